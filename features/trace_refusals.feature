@integration
Feature: Who may download a trace, and for how long
  The API hands out a download link only to the task's owner, and only for a
  trace that is really stored in the platform's trace storage, under the
  owner's own prefix. Whatever the reason for a refusal, the user is told it
  in one line, the command fails, and nothing is downloaded or written.

  A link lasts 15 minutes and opens only the trace it was issued for: the
  trace storage checks its signature and its age.

  Background:
    Given Alice and Bob have accounts on the platform
    And Alice ran a task with trace on, which finished after 2 turns of agent work

  @handler @cli
  Scenario Outline: The API refuses the download, and the user sees why
    Given <situation>
    When Alice saves the task's trace to a file
    Then the download fails and Alice is told "<message>"
    And nothing was downloaded

    Examples:
      | situation                                                    | message                                                  |
      | Alice's sign-in is no longer accepted                        | Unauthorized (HTTP 401)                                  |
      | the task does not exist                                      | not found. (TASK_NOT_FOUND)                              |
      | the task id is longer than any task's id can be              | a task id is at most 2048 bytes of UTF-8. (TASK_NOT_FOUND) |
      | the task belongs to Bob                                      | You do not have access to this task. (FORBIDDEN)         |
      | the task ran without trace                                   | either it did not run with --trace                       |
      | the task's record holds a malformed trace location           | Internal server error. (INTERNAL_ERROR, request id …)    |
      | the task's record points at a bucket the platform does not own | Internal server error. (INTERNAL_ERROR, request id …)  |
      | the task's record points at a trace under Bob's prefix       | You do not have access to this trace. (FORBIDDEN)        |

    @regression
    Examples: a trace that has left storage is reported as not available, never as a dead link
      | situation                                                    | message                                                  |
      | the task's trace has since expired from storage              | or its trace upload has not completed yet                |

    @needs_moto
    Examples: the trace storage fails the API's check (a Deny bucket policy, as moto applies it)
      | situation                                                    | message                                                  |
      | the trace storage refuses to let the API check the trace     | Internal server error. (INTERNAL_ERROR, request id …)    |

  @extra @cli
  Scenario: The CLI refuses a blank task id itself
    Given the task id is blank
    When Alice saves the task's trace to a file
    Then the download fails and Alice is told "The task id is empty."
    And nothing was downloaded

  @cli
  Scenario: A refused sign-in tells the user to sign in again
    Given Alice's sign-in is no longer accepted
    When Alice downloads the task's trace
    Then the download fails and Alice is told "run `bgagent login` to sign in again"

  @needs_local_stack @handler
  Scenario: The download link is signed with AWS Signature Version 4 and lasts 15 minutes
    When Alice downloads the task's trace
    Then the download succeeds
    And the link she used was signed with AWS Signature Version 4
    And it was valid for exactly 15 minutes

  @needs_local_stack @handler @cli
  Scenario: A link used within its 15 minutes opens the trace
    Given Alice's download starts 14 minutes after the link was issued
    When Alice downloads the task's trace
    Then the download succeeds

  @needs_local_stack @cli
  Scenario: A link older than 15 minutes is refused, and the CLI says to ask for a new one
    Given Alice's download starts 16 minutes after the link was issued
    When Alice downloads the task's trace
    Then the download fails and Alice is told "The link may have expired (links last 15 minutes): run the command again"
    And nothing was downloaded

  @handler
  Scenario: A link altered to open another user's trace is refused
    Given Bob ran a task with trace on, which finished after 2 turns of agent work
    When Alice's trace link is altered to point at Bob's trace and fetched
    Then the trace storage refuses it as a forged link
    And none of Bob's trace was received

  @handler
  Scenario: A link altered to last longer is refused
    When Alice's trace link is altered to last a week and fetched
    Then the trace storage refuses it as a forged link

  @cli @handler
  Scenario: A task id with unusual characters reaches the API intact
    Given the task id is "task/with space?#%"
    When Alice downloads the task's trace
    Then the download fails and Alice is told "Task task/with space?#% not found. (TASK_NOT_FOUND)"

  @needs_local_stack @cli
  Scenario: An expired sign-in is refused, with a hint to sign in again
    Given Alice's sign-in expired an hour ago
    When Alice downloads the task's trace
    Then the download fails and Alice is told "The incoming token has expired (HTTP 401) Your session may have expired: run `bgagent login` to sign in again."
    And nothing was downloaded

  @needs_local_stack @cli
  Scenario: A sign-in from another user pool is refused
    Given Mallory signed in to another user pool
    When Mallory downloads the trace of Alice's task
    Then the download fails and Mallory is told "Unauthorized (HTTP 401)"
    And nothing was downloaded
