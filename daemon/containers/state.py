"""The container lifecycle as an explicit state machine with one transition function.

    created ──start──▶ running ──pause──▶ paused
       ▲                 │  ▲              │ resume
       │                 │  └──────────────┘
       │               exit (die)
       │                 ▼
       │              exited ──restart policy──▶ restarting ──start──▶ running
       │                 │                          │ stop / failed start
       │                 │ start                    ▼
       │                 └──────────────────────▶ exited
    any non-running ──remove──▶ removing ──▶ (gone);  a failed removal ends in dead

Every state change in the daemon goes through `transition`, which raises FailedPrecondition
with docker's own messages when the move is not allowed.
"""

from __future__ import annotations

import enum

from ctrd.errdefs import FailedPrecondition


class Status(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    DEAD = "dead"
    REMOVING = "removing"


class Action(enum.Enum):
    START = "start"          # the process is up (from created, exited, restarting)
    PAUSE = "pause"
    RESUME = "resume"
    EXIT = "exit"            # the process ended (or never started: exec failure)
    RESTART_WAIT = "restart-wait"  # the restart policy scheduled a restart
    CANCEL_RESTART = "cancel-restart"  # an explicit stop of a restarting container
    REMOVE = "remove"        # removal begins (not running)
    DIE = "die"              # removal failed half-way: the container is dead


# target state for each (state, action); everything else is refused
_TABLE: dict[tuple[Status, Action], Status] = {
    (Status.CREATED, Action.START): Status.RUNNING,
    (Status.EXITED, Action.START): Status.RUNNING,
    (Status.RESTARTING, Action.START): Status.RUNNING,
    (Status.RUNNING, Action.PAUSE): Status.PAUSED,
    (Status.PAUSED, Action.RESUME): Status.RUNNING,
    (Status.RUNNING, Action.EXIT): Status.EXITED,
    (Status.PAUSED, Action.EXIT): Status.EXITED,
    # a start that fails before the process runs (exec not found) still records an exit
    (Status.CREATED, Action.EXIT): Status.EXITED,
    (Status.EXITED, Action.EXIT): Status.EXITED,
    (Status.RESTARTING, Action.EXIT): Status.EXITED,
    (Status.EXITED, Action.RESTART_WAIT): Status.RESTARTING,
    (Status.RESTARTING, Action.CANCEL_RESTART): Status.EXITED,
    (Status.CREATED, Action.REMOVE): Status.REMOVING,
    (Status.EXITED, Action.REMOVE): Status.REMOVING,
    (Status.DEAD, Action.REMOVE): Status.REMOVING,
    (Status.RESTARTING, Action.REMOVE): Status.REMOVING,
    (Status.REMOVING, Action.REMOVE): Status.REMOVING,  # finishing a removal a crash interrupted
    (Status.REMOVING, Action.DIE): Status.DEAD,
}


def refusal(cid: str, status: Status, action: Action) -> FailedPrecondition:
    """docker's wording for each refused move."""
    if action is Action.START:
        if status is Status.RUNNING:
            return FailedPrecondition(f"container {cid} is already running")
        if status is Status.PAUSED:
            return FailedPrecondition(f"container {cid} is paused, unpause it instead")
    if action is Action.REMOVE and status in (Status.RUNNING, Status.PAUSED):
        verb = "running" if status is Status.RUNNING else "paused"
        return FailedPrecondition(
            f"cannot remove {verb} container {cid}: stop the container before removing or force remove"
        )
    if action is Action.PAUSE:
        if status is Status.PAUSED:
            return FailedPrecondition(f"container {cid} is already paused")
        return FailedPrecondition(f"container {cid} is not running")
    if action is Action.RESUME:
        return FailedPrecondition(f"container {cid} is not paused")
    if status is Status.REMOVING:
        return FailedPrecondition(f"container {cid} is being removed")
    return FailedPrecondition(f"container {cid} cannot {action.value} while {status.value}")


def transition(cid: str, status: Status, action: Action) -> Status:
    """The one place that decides whether `action` may happen in `status`; returns the new state."""
    target = _TABLE.get((status, action))
    if target is None:
        raise refusal(cid, status, action)
    return target


def is_alive(status: Status) -> bool:
    """A process exists (a shim holds it)."""
    return status in (Status.RUNNING, Status.PAUSED)
