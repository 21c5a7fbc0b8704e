@integration
Feature: Each layer may do only what its role allows
  The agent runtime and the trace API each run under a role of their own, and
  the trace storage and the task records answer each call as its role allows.
  The agent runtime may store traces under the trace prefix and record how its
  task ended; the API may read the task records and the stored traces, and
  list the trace storage so that a trace that has gone is told apart from one
  it may not read. Nothing more.

  Against a stack the suite did not create, the suite stands in for the agent
  runtime with the credentials of the shell that runs it, so the agent
  runtime's role is not what is checked there.

  Background:
    Given Alice and Bob have accounts on the platform

  @needs_local_stack @handler
  Scenario: The API without read access to the trace storage fails and says why in its log
    Given Alice ran a task with trace on, which finished after 2 turns of agent work
    And the trace API's role has lost its read access to the trace storage
    When Alice downloads the task's trace
    Then the download fails and Alice is told "Internal server error. (INTERNAL_ERROR, request id …)"
    And the trace API logged an error: the trace storage refused to let it check the trace

  @needs_local_stack @agent @needs_our_agent
  Scenario: The agent runtime may store nothing outside the trace prefix
    When the agent runtime tries to store a file outside the trace prefix
    Then the trace storage refuses it
    And nothing is stored in the trace storage

  @needs_local_stack @agent @needs_our_agent
  Scenario: The agent runtime without write access still finishes the task and says why in its log
    Given the agent runtime's role has lost its write access to the trace storage
    And Alice ran a task with trace on, which finished after 2 turns of agent work
    Then the task still ended as completed
    And nothing is stored in the trace storage
    And the agent logged an error: its role is likely missing s3:PutObject on the trace storage
