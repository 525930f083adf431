"""Issue 23, finding 1: a hostile expression cannot make the calculator (which the relay runs on
its event loop) build a huge number; it is refused with a message the model reads.

No timing: each test asserts the refusal, or how much memory evaluating took (tracemalloc
counts the bytes every intermediate number needed; ``10**(10**5)`` alone is 41 kB).
"""

from __future__ import annotations

import ast
import json
import random
import tracemalloc

import httpx
import pytest
from conftest import Hold

from helpers.relay import start_relay
from helpers.relay.toolstream import MATH_TOOLS
from helpers.settings import Config
from helpers.tools import calculator
from helpers.tools.calculator import CALCULATOR_SCHEMA, MAX_ROUND_DIGITS, CalculatorError, calculate
from helpers.tools.loop import tool

pytestmark = pytest.mark.timeout(120)
#: what evaluating (not parsing) one expression may allocate; a fuzz of the grammar peaks at 4 kB
PEAK_BYTES = 32 * 1024


def evaluation_peak(expression: str) -> int:
    """Bytes allocated at the peak while evaluating ``expression`` (refused or not)."""
    tree = ast.parse(expression.replace("^", "**"), mode="eval")
    tracemalloc.start()
    try:
        calculator._eval(tree)
    except CalculatorError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("expression", [
    "round(1, -10**7)", "round(1, -10**6)", "round(2, 10**7)", "round(1.5, -10**7)",
    f"round(7, -{MAX_ROUND_DIGITS + 1})",
])
def test_round_with_too_many_digits_is_refused_saying_why(expression: str) -> None:
    with pytest.raises(CalculatorError, match=f"round: at most {MAX_ROUND_DIGITS} digits"):
        calculate(expression)


def test_round_keeps_every_digit_a_number_here_can_have() -> None:
    assert calculate("round(2**996, -300)") == 10**300
    assert calculate(f"round(123, -{MAX_ROUND_DIGITS})") == 0
    assert calculate(f"round(pi, {MAX_ROUND_DIGITS})") == calculate("pi")


@pytest.mark.parametrize("expression", ["(10**299)**1000", "(2**996)**2", "2**997",
                                        "(-9)**999", "round(1, -10**5)", "round(5, -10**4)"])
def test_a_huge_number_is_refused_before_it_is_built(expression: str) -> None:
    with pytest.raises(CalculatorError, match="too large|round: at most"):
        calculate(expression)
    assert evaluation_peak(expression) < PEAK_BYTES


def test_the_largest_power_allowed_is_computed() -> None:
    assert calculate("2**996") == 2**996 and calculate("(-2)**995") == -(2**995)
    assert calculate("(10**299)**1") == 10**299


@pytest.mark.parametrize("expression, message", [
    ("1e999", "too large"), ("1e999 - 1e999", "too large"), ("log(2, 1)", "log: float division"),
])
def test_infinity_nan_and_a_base_one_log_are_refused(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=message):  # was inf, nan, a ZeroDivisionError
        calculate(expression)


def test_no_expression_of_a_small_fuzz_builds_a_big_number() -> None:
    """Seeded: hostile constants in nested operators, calls and powers."""
    atoms = ["0", "1", "-1", "2", "9", "0.5", "0.1", "1e-300", "1e300", "1e308", "5e-324",
             "999", "-1000", "10**5", "-10**5", "10**299", "2**996", "-(2**996)", "9" * 150,
             "pi", "tau"]
    rng = random.Random(23)

    def expression(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(atoms)
        pick = rng.random()
        if pick < 0.5:
            op = rng.choice(["+", "-", "*", "/", "//", "%", "**"])
            return f"({expression(depth - 1)}){op}({expression(depth - 1)})"
        if pick < 0.8:
            name = rng.choice(["round", "log"])
            return f"{name}({expression(depth - 1)},{expression(depth - 1)})"
        name = rng.choice(["sqrt", "sin", "exp", "abs", "floor", "ceil", "round"])
        return f"{name}({expression(depth - 1)})"

    tried = [e for e in (expression(4) for _ in range(1500)) if len(e) <= 200]
    assert len(tried) > 1000
    worst = max(tried, key=evaluation_peak)
    assert evaluation_peak(worst) < PEAK_BYTES, worst


def test_the_relay_tells_the_model_why_a_huge_round_was_refused(offline) -> None:
    """The red team's question, through the relay: the refusal is the tool's result, and the
    model's next request carries it (the offline model repeats what the tools returned)."""
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    relay = start_relay(config, jupyter=False, name="relay-hostile-calc", tools=MATH_TOOLS)
    try:
        body = httpx.post(relay.url + "api/chat/stream", timeout=60, json={
            "question": 'Please calculate "round(1, -10**7)"'}).text
    finally:
        relay.stop()
    events = [(block.split("\n")[0][7:], json.loads(block.split("\n")[1][6:]))
              for block in body.strip().split("\n\n")]
    refusal = (f"Error: calculate failed: CalculatorError: round: at most {MAX_ROUND_DIGITS} "
               "digits either way (got -10000000); numbers here are at most 1e+300")
    results = [i for i, (name, _) in enumerate(events) if name == "tool_result"]
    assert [events[i][1]["result"] for i in results] == [refusal]
    answer = "".join(d["content"] for name, d in events[results[0]:] if name == "delta")
    assert refusal in answer  # the model's next request carried it
    assert offline.stats()["chat_requests"] == 2


def test_a_relay_with_tools_imports_jsonschema_before_it_serves() -> None:
    """The tool loop checks arguments with jsonschema, whose first import took 0.9-1.5 s: on
    the event loop at the first tool call, /healthz waited that long. The app imports it when
    it is built with tools (a fresh interpreter shows it; a relay without tools does not)."""
    import subprocess
    import sys

    script = ("import sys; from helpers.relay import create_app; "
              "from helpers.relay.toolstream import MATH_TOOLS; "
              "from helpers.settings import Config; "
              "config = Config('offline', 'http://127.0.0.1:9/v1', 'moonshot-v1-8k', 'k'); "
              "before = 'jsonschema' in sys.modules; create_app(config{}); "
              "print(before, 'jsonschema' in sys.modules)")
    def run(extra: str) -> str:
        return subprocess.run([sys.executable, "-c", script.format(extra)], capture_output=True,
                              text=True, check=True, timeout=60).stdout.split()
    assert run(", tools=MATH_TOOLS") == ["False", "True"]
    assert run("") == ["False", "False"]


def test_healthz_answers_while_the_calculator_is_provably_running(offline) -> None:
    """A tool runs off the event loop: while the calculator is held inside its call (a
    threading.Event, so it is provably still running), /healthz answers; then the call
    finishes and its result reaches the answer. The order of events, not a time."""
    hold = Hold()
    held_tools = (tool(hold.wrap(calculate), name="calculate", parameters=CALCULATOR_SCHEMA),)
    config = Config("offline", offline.base_url, "moonshot-v1-8k", "test-key")
    relay = start_relay(config, jupyter=False, name="relay-hostile-calc-held",
                        tools=held_tools)
    try:
        body = hold.healthz_during(lambda: httpx.post(
            relay.url + "api/chat/stream", timeout=120,
            json={"question": 'Please calculate "6*7"'}).text, relay.url + "healthz")
    finally:
        relay.stop()
    assert '"result":"42"' in body.replace(" ", "") and "event: done" in body
