"""Tasks: datasets, how to read them, and what the student and the teacher see of each row."""

from armada.tasks.model import Example, Split, Task, sha256_text
from armada.tasks.registry import TASKS, get_task, task_names

__all__ = ["Example", "Split", "Task", "TASKS", "get_task", "task_names", "sha256_text"]
