"""Tasks: datasets, how to read them, and what the student and the teacher see of each row."""

from armada.tasks.model import STUDENT_INPUT, Example, Split, Task, sha256_text
from armada.tasks.registry import TASKS, get_task, task_names

__all__ = ["STUDENT_INPUT", "Example", "Split", "Task", "TASKS", "get_task", "task_names", "sha256_text"]
