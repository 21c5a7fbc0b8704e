@integration
Feature: Regressions that reached users
  Each of these shipped once in the trace round trip and reached users,
  because no test drove the layers together when something went wrong.
  Each scenario fails if its regression comes back.

  Background:
    Given Alice and Bob have accounts on the platform

  Rule: A regression that shipped once has a scenario that keeps it out

    Scenario: Regression 1: the stored trace carries no content encoding, so any HTTP client gets it as stored
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      When Alice's trace link is fetched by an ordinary HTTP client
      Then the client receives exactly the gzip artifact stored for the task

    Scenario: Regression 1: a trace an older agent marked with a gzip content encoding still saves byte for byte
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      And an older agent stored the task's trace marked with a gzip content encoding
      When Alice saves the task's trace to a file
      Then the file holds exactly the artifact stored for the task

    Scenario: Regression 1: a trace an older agent marked with a gzip content encoding still prints intact
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      And an older agent stored the task's trace marked with a gzip content encoding
      When Alice downloads the task's trace
      Then every event of the task follows in the order it happened

    Scenario: Regression 2: a task cancelled just as the agent recorded its end still links its trace
      Given Alice ran a task with trace on, which was cancelled just as the agent recorded its end
      When Alice downloads the task's trace
      Then the download succeeds
      And every event of the task follows in the order it happened
      And the task stays cancelled

    Scenario: Regression 3: a trace that has left storage is reported as not available, never as a dead link
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      And the task's trace has since expired from storage
      When Alice downloads the task's trace
      Then the download fails and Alice is told "or its trace upload has not completed yet"
      And nothing was downloaded

    Scenario: Regression 4: a traced task without an owner is refused before it runs
      When a task with trace on but no owner is handed to the agent
      Then the agent refuses the task before doing any work
      And nothing is stored in the trace storage

    @needs_local_stack
    Scenario: Regression 5: saving a trace never silently overwrites an earlier file
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      And Alice already has a file at the download target
      When Alice saves the task's trace to that file
      Then the download fails and Alice is told "already exists; use --force to replace it"
      And the earlier file is unchanged
      And the trace storage was never asked for the trace

    Scenario: Regression 5: with --force, a complete download replaces the earlier file
      Given Alice ran a task with trace on, which finished after 2 turns of agent work
      And Alice already has a file at the download target
      When Alice saves the task's trace to that file, replacing it
      Then the file holds exactly the artifact stored for the task

    @needs_local_stack
    Scenario: Regression 6: a stalled download gives up instead of hanging
      Given Alice ran a task with trace on, which finished after 30 turns of agent work
      And Alice's downloads give up after 0.2 seconds
      And the trace storage will answer the download with a stall mid-body
      When Alice saves the task's trace to a file
      Then the download fails and Alice is told "The download timed out after 0.2 s"
      And nothing was downloaded
