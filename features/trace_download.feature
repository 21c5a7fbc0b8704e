@integration
Feature: Downloading the trace of a task
  A task run with --trace keeps its whole agent trajectory. When the task
  ends, the agent packs the trajectory as gzipped JSON Lines, stores it as
  the task's trace, and links the trace on the task record.

  Later the task's owner asks for the trace with `bgagent trace download`.
  The API checks that the caller owns the task and that the trace is really
  stored, then hands back a download link that lasts 15 minutes. The CLI
  follows the link and prints the trajectory, or saves the stored artifact
  to a file.

  A trace keeps at most 50 MiB of events (as compact JSON) unless the task
  sets a lower cap. Past its cap the agent keeps the beginning of the run and
  counts what it dropped, so a trace is never silently incomplete; the
  summary names the first event dropped (its type and size), and a run whose
  very first event is over the cap still leaves a trace of its summary alone.

  An event holding a value JSON cannot carry (a number that is no number, text
  that is not valid Unicode, a point in time, raw bytes, any other object) is
  kept: in its place the owner reads {"__unserializable__": "<its type>",
  "repr": "<how the agent's Python showed it>"}, and the summary counts such
  values as "unserializable_values".

  A task record holds at most 400 KB. When the trace's link would take it past
  that, the task still ends, without the link: its owner is told no trace is
  available rather than finding the task running forever.

  Background:
    Given Alice and Bob have accounts on the platform

  @agent @handler @cli
  Scenario: A traced task uploads, is presigned for its owner, and downloads intact
    Given Alice ran a task with trace on, which finished after 3 turns of agent work
    When Alice downloads the task's trace
    Then the download succeeds
    And she reads the trajectory as JSON Lines, headed by a summary of the trace
    And the summary counts every event of the task, none dropped
    And every event of the task follows in the order it happened

  @agent @needs_our_agent
  Scenario: A trace past its cap keeps the beginning of the run and counts what it dropped
    Given the agent keeps at most 4 KiB of each task's trace
    And Alice ran a task with trace on, which finished after 30 turns of agent work
    When Alice downloads the task's trace
    Then the download succeeds
    And the trace holds the task's events from the first, in order, as many as fit in 4 KiB
    And the summary counts the events kept and the events dropped
    And the task reported, once, that its trace was truncated

  @agent @extra @needs_our_agent
  Scenario: A first event larger than the cap still leaves a trace that says what was dropped
    Given the agent keeps at most 1 KiB of each task's trace
    And Alice ran a task with trace on, whose first event alone is larger than 1 KiB
    When Alice downloads the task's trace
    Then the download succeeds
    And the summary names the task's first event as the first one dropped, with its size
    And the summary counts the events kept and the events dropped

  @agent @extra @needs_our_agent
  Scenario Outline: A value JSON cannot carry is kept in the trace, marked as such
    Given Alice ran a task with trace on, whose agent recorded <value> in its second turn
    When Alice downloads the task's trace
    Then the download succeeds
    And she reads every event of the task in order, <value> marked as a <type> JSON could not carry
    And the summary counts 1 value JSON could not carry

    Examples:
      | value                          | type              |
      | a number that is no number     | float             |
      | text that is not valid Unicode | str               |
      | a point in time                | datetime.datetime |
      | raw bytes                      | bytes             |

  @agent @needs_our_agent
  Scenario: A task whose record has no room left for its trace link still finishes
    Given Alice ran a task with trace on, whose record had grown too large to also hold the trace's link
    When Alice downloads the task's trace
    Then the download fails and Alice is told "or its trace upload has not completed yet"
    And the task still ended as completed

  @cli
  Scenario: The bgagent command prints the trace, as users run it in a terminal
    Given Alice ran a task with trace on, which finished after 3 turns of agent work
    When Alice runs the bgagent command to download the task's trace
    Then the command exits successfully and prints nothing but the trajectory
    And every event of the task follows in the order it happened

  @cli
  Scenario: Saving the trace to a file keeps the stored artifact byte for byte
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    When Alice saves the task's trace to a file
    Then the download succeeds
    And the file holds exactly the artifact stored for the task
    And she is told where the trace was written

  @needs_local_stack @cli
  Scenario Outline: A trace whose ETag is no MD5 still saves intact, checked against its stored checksum
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And the trace storage keeps the trace under <storage>, so its ETag is no MD5
    When Alice saves the task's trace to a file
    Then the download succeeds
    And the file holds exactly the artifact stored for the task

    Examples:
      | storage            |
      | a KMS key          |
      | a multipart upload |

  @handler
  Scenario: Another user is refused and receives nothing
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    When Bob downloads the trace of Alice's task
    Then the download fails, telling him he does not have access to the task
    And nothing was downloaded

  @handler @cli
  Scenario: A task run without trace gets a friendly explanation
    Given Alice ran a task with trace off, which finished after 2 turns of agent work
    When Alice downloads the task's trace
    Then the download fails, explaining that the task did not run with --trace or its upload has not completed
    And she is told how to submit the task again with a trace
    And nothing was downloaded

  @regression @agent
  Scenario: The stored trace carries no content encoding, so any HTTP client gets it as stored
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    When Alice's trace link is fetched by an ordinary HTTP client
    Then the client receives exactly the gzip artifact stored for the task

  @regression @extra @cli
  Scenario: A trace an older agent marked with a gzip content encoding still saves byte for byte
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And an older agent stored the task's trace marked with a gzip content encoding
    When Alice saves the task's trace to a file
    Then the file holds exactly the artifact stored for the task

  @regression @extra @cli
  Scenario: A trace an older agent marked with a gzip content encoding still prints intact
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And an older agent stored the task's trace marked with a gzip content encoding
    When Alice downloads the task's trace
    Then every event of the task follows in the order it happened

  @regression @needs_local_stack @cli
  Scenario: Saving a trace never silently overwrites an earlier file
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And Alice already has a file at the download target
    When Alice saves the task's trace to that file
    Then the download fails and Alice is told "already exists; use --force to replace it"
    And the earlier file is unchanged
    And the trace storage was never asked for the trace

  @regression @cli
  Scenario: With --force, a complete download replaces the earlier file
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And Alice already has a file at the download target
    When Alice saves the task's trace to that file, replacing it
    Then the file holds exactly the artifact stored for the task
