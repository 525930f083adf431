"""Self-checks for the lessons' exercises: run one after your answer and read what it prints.

One module per lesson (``helpers.exercises.lesson3``); what they share is in ``_common``.
Each ``check_lessonN_exM`` prints ``✅ ...`` or ``not yet: <hint>`` and never raises.
"""

from __future__ import annotations

from .lesson1 import check_lesson1_ex1, check_lesson1_ex2
from .lesson2 import check_lesson2_ex1, check_lesson2_ex2
from .lesson3 import check_lesson3_ex1, check_lesson3_ex2
from .lesson4 import check_lesson4_ex1, check_lesson4_ex2
from .lesson5 import check_lesson5_ex1, check_lesson5_ex2
from .lesson6 import check_lesson6_ex1, check_lesson6_ex2
from .lesson7 import check_lesson7_ex1, check_lesson7_ex2
from .lesson8 import check_lesson8_ex1, check_lesson8_ex2
from .lesson9 import check_lesson9_ex1, check_lesson9_ex2

__all__ = [
    "check_lesson1_ex1",
    "check_lesson1_ex2",
    "check_lesson2_ex1",
    "check_lesson2_ex2",
    "check_lesson3_ex1",
    "check_lesson3_ex2",
    "check_lesson4_ex1",
    "check_lesson4_ex2",
    "check_lesson5_ex1",
    "check_lesson5_ex2",
    "check_lesson6_ex1",
    "check_lesson6_ex2",
    "check_lesson7_ex1",
    "check_lesson7_ex2",
    "check_lesson8_ex1",
    "check_lesson8_ex2",
    "check_lesson9_ex1",
    "check_lesson9_ex2",
]
