"""Solutions to the lessons' exercises, one module per lesson.

Try the exercise first: the self-check cell tells you what is missing. Each module here is
importable from the project folder (``from solutions.lesson2 import first_words``) and is
what ``tests/test_exercises.py`` runs the checks against.

The comments say why each line is there. docs/teaching.md ("Solutions explained") says, for
every exercise, why the answer is right and which wrong answers its check refuses.
"""
