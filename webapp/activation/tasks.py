"""Tasks for managers: from trigger steps or by hand, with due dates.

A manager sees and ticks off their own tasks; admins and marketers see
everyone's (and the unassigned ones, from triggers whose customer has no
manager and whose creator is gone).
"""

import datetime

import peewee as pw

from ..i18n import _
from ..models import Customer, Task, User, utcnow

SCOPES = ("mine", "all", "unassigned")
STATES = ("open", "done")


class TaskError(ValueError):
    def __init__(self, errors):
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


def sees_all(user):
    return user.role in ("admin", "marketer")


def default_scope(user):
    """Where the task list opens: everyone's open tasks for those who see them (an admin's
    own list is usually empty while the managers' tasks pile up), one's own for managers."""
    return "all" if sees_all(user) else "mine"


def can_edit(task, user):
    return sees_all(user) or task.assignee_id == user.id


def task_list(user, scope="mine", state="open", offset=0, limit=50):
    """(rows, total) of tasks with their customer and assignee."""
    if not sees_all(user):
        scope = "mine"
    assignee = User.alias("assignee")
    query = (
        Task.select(Task, Customer, assignee)
        .join(Customer, pw.JOIN.LEFT_OUTER, on=(Task.customer == Customer.id))
        .switch(Task)
        .join(assignee, pw.JOIN.LEFT_OUTER, on=(Task.assignee == assignee.id))
    )
    if scope == "mine":
        query = query.where(Task.assignee == user.id)
    elif scope == "unassigned":
        query = query.where(Task.assignee.is_null())
    if state == "done":
        query = query.where(Task.done_at.is_null(False)).order_by(Task.done_at.desc(), Task.id.desc())
    else:
        # Overdue and due first, then by due date; tasks without a date last.
        query = query.where(Task.done_at.is_null()).order_by(
            pw.Case(None, [(Task.due_on.is_null(), 1)], 0), Task.due_on, Task.id
        )
    return list(query.offset(offset).limit(limit)), query.count()


def open_count(user):
    return Task.select().where(Task.assignee == user.id, Task.done_at.is_null()).count()


def for_customer(customer_id, limit=20):
    assignee = User.alias("assignee")
    return list(
        Task.select(Task, assignee)
        .join(assignee, pw.JOIN.LEFT_OUTER, on=(Task.assignee == assignee.id))
        .where(Task.customer == customer_id)
        .order_by(Task.done_at.is_null(False), Task.due_on, Task.id.desc())
        .limit(limit)
    )


def set_done(task, done, user):
    if not can_edit(task, user):
        raise PermissionError
    task.done_at = utcnow() if done else None
    task.save()
    return task


def create(customer_id, title, due_on, assignee_id, user):
    errors = {}
    title = " ".join((title or "").split())[:250]
    if not title:
        errors.setdefault("title", []).append(_("Write what is to be done."))
    due = None
    if due_on:
        try:
            due = datetime.date.fromisoformat(str(due_on))
        except ValueError:
            errors.setdefault("due_on", []).append(_("Enter a date as YYYY-MM-DD."))
    assignee = None
    if assignee_id:
        try:
            assignee = User.get_or_none(User.id == int(assignee_id), User.active == True)  # noqa: E712
        except (TypeError, ValueError):
            assignee = None
        if assignee is None:
            errors.setdefault("assignee_id", []).append(_("Choose an active user."))
    if errors:
        raise TaskError(errors)
    return Task.create(customer=customer_id, title=title, due_on=due, assignee=assignee or user.id, created_by=user.id)


def is_overdue(task, today=None):
    return task.done_at is None and task.due_on is not None and task.due_on < (today or datetime.date.today())
