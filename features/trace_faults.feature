@integration
Feature: A download or an upload that goes wrong loses nothing
  Between the CLI and the trace storage a connection can drop, a body can
  arrive short or damaged, the storage can answer with an error or stall.
  Saving to a file, the file appears only once the whole artifact has
  arrived intact; an earlier file is replaced only by a complete download,
  and only with --force. Printing to the terminal, a broken download ends
  with a failure status and a one-line reason.

  On the agent's side, a trace that cannot be stored never stops the task
  from finishing, and a task cancelled mid-run keeps the trace of its work.

  Background:
    Given Alice and Bob have accounts on the platform

  @needs_local_stack @cli
  Scenario Outline: A broken download to a file leaves no file behind
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage will answer the download with <fault>
    When Alice saves the task's trace to a file
    Then the download fails and Alice is told "<message>"
    And nothing was downloaded

    Examples:
      | fault                                 | message                                   |
      | a connection reset mid-body           | The download was interrupted              |
      | a body shorter than its stated length | The download was interrupted              |
      | access denied                         | The trace storage answered HTTP 403       |
      | a server error                        | The trace storage answered HTTP 500       |

    @extra
    Examples: bytes that arrive whole but damaged are caught by the stored checksum
      | fault                                 | message                                   |
      | corrupt gzip bytes                    | do not match the stored trace             |
      | a single changed byte                 | do not match the stored trace             |

    @extra
    Examples: a trace storage that stays too busy is asked a few times, then the user is told so
      | fault                                 | message                                   |
      | a request to slow down                | The trace storage is busy                 |

  @needs_local_stack @cli
  Scenario Outline: A broken download to the terminal fails with a clear reason
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage will answer the download with <fault>
    When Alice downloads the task's trace
    Then the download fails and Alice is told "<message>"

    Examples:
      | fault                                 | message                                   |
      | a connection reset mid-body           | The download was interrupted              |
      | a body shorter than its stated length | The download was interrupted              |
      | corrupt gzip bytes                    | corrupt or not gzipped                    |
      | a single changed byte                 | corrupt or not gzipped                    |
      | access denied                         | The trace storage answered HTTP 403       |
      | a server error                        | The trace storage answered HTTP 500       |

  @needs_local_stack @cli @needs_download_deadline
  Scenario Outline: A download too slow to finish gives up in time and leaves no file behind
    Given Alice's downloads give up after 0.1 seconds
    And Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage will answer the download with <fault>
    When Alice saves the task's trace to a file
    Then the download fails and Alice is told "The download timed out after 0.1 s"
    And it gave up partway through the trace
    And nothing was downloaded

    Examples:
      | fault                                |
      | a trickle too slow to finish in time |

    @regression
    Examples: a stalled download gives up instead of hanging
      | fault                                |
      | a stall mid-body                     |

  @needs_local_stack @regression @cli @needs_download_deadline
  Scenario: A stalled download to the terminal gives up in time
    Given Alice's downloads give up after 0.1 seconds
    And Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage will answer the download with a stall mid-body
    When Alice downloads the task's trace
    Then the download fails and Alice is told "The download timed out after 0.1 s"
    And it gave up partway through the trace

  @needs_local_stack @extra @cli
  Scenario: A trace storage too busy for a moment is asked again, and the trace saves intact
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage is too busy to answer the first try of the download
    When Alice saves the task's trace to a file
    Then the download succeeds
    And the file holds exactly the artifact stored for the task
    And the trace storage was asked for the trace twice

  @needs_local_stack @cli
  Scenario: A trace stored in parts, whose checksum covers only the parts, still saves intact
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage keeps the trace as a multipart upload, with a checksum of its parts
    When Alice saves the task's trace to a file
    Then the download succeeds
    And the file holds exactly the artifact stored for the task

  @needs_local_stack @cli
  Scenario: A broken download never replaces an earlier file, even with --force
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And Alice already has a file at the download target
    And the trace storage will answer the download with a connection reset mid-body
    When Alice saves the task's trace to that file, replacing it
    Then the download fails and Alice is told "The download was interrupted"
    And the earlier file is unchanged

  @needs_local_stack @cli
  Scenario: Interrupting a download with Ctrl-C leaves nothing behind
    Given Alice ran a task with trace on, which finished after 30 turns of agent work
    And the trace storage will answer the download with a stall mid-body
    When Alice interrupts the download of the task's trace to a file
    Then the download stops, telling her nothing was saved
    And nothing was downloaded

  @needs_local_stack @agent
  Scenario: A task whose trace cannot be stored still finishes
    Given the trace storage refuses the agent's uploads
    And Alice ran a task with trace on, which finished after 2 turns of agent work
    When Alice downloads the task's trace
    Then the download fails and Alice is told "or its trace upload has not completed yet"
    And the task still ended as completed

  @agent @needs_our_agent
  Scenario: A task whose agent reported a failure ends as failed and keeps its trace
    Given Alice ran a task with trace on, which failed after 2 turns of agent work
    When Alice downloads the task's trace
    Then the download succeeds
    And every event of the task follows in the order it happened
    And the task still ended as failed

  @agent @needs_our_agent
  Scenario: A task whose agent crashed keeps the trace of what it did
    Given Alice ran a task with trace on, whose agent crashed after 2 turns
    When Alice downloads the task's trace
    Then the download succeeds
    And every event of the task follows in the order it happened
    And the task still ended as failed

  @agent @needs_our_agent
  Scenario: A task cancelled while the agent worked keeps the trace of what it did
    Given Alice ran a task with trace on, which was cancelled while the agent worked
    When Alice downloads the task's trace
    Then the download succeeds
    And every event of the task follows in the order it happened
    And the task stays cancelled

  @regression @agent @needs_our_agent
  Scenario: A task cancelled just as the agent recorded its end still links its trace
    Given Alice ran a task with trace on, which was cancelled just as the agent recorded its end
    When Alice downloads the task's trace
    Then the download succeeds
    And every event of the task follows in the order it happened
    And the task stays cancelled

  @regression @agent @needs_our_agent
  Scenario: A traced task without an owner is refused before it runs
    When a task with trace on but no owner is handed to the agent
    Then the agent refuses the task before doing any work
    And nothing is stored in the trace storage
