"""Checks a junit file against tt-xla's property rules, as its dashboards read them: every test case
has one ``tags`` property (``test_name``, ``specific_test_case`` and the ``record_test_properties``
keys, values as strings) and one ``owner`` (``tt-xla``); a model test has a ``group`` and one of the
two mandatory key sets; the suite's model tests carry its model name.

    python -m tests.jax.models.qwen2_5.testing.junit_check JUNIT.xml [--min-cases N] [--measured TEST ...]
        [--require-property NAME ...]

Prints one line per kind of case and exits 1 with the first problems when a rule is broken.
"""

from __future__ import annotations

import argparse
import ast
import sys
import xml.etree.ElementTree as ET

from . import properties


def case_properties(case) -> dict:
    return {"names": [p.get("name") for p in case.iter("property")],
            **{p.get("name"): p.get("value") for p in case.iter("property")}}


def check_case(case) -> list:
    """The problems of one ``<testcase>`` (an empty list when it follows the rules)."""
    name, props = case.get("name"), case_properties(case)
    names = props["names"]
    if names.count("tags") != 1 or names.count("owner") != 1:
        return [f"{name}: properties {names} (expected one tags and one owner)"]
    try:
        tags = ast.literal_eval(props["tags"])
    except (ValueError, SyntaxError):
        return [f"{name}: tags is not a dict literal: {props['tags'][:200]}"]
    problems = []
    if tags.get("specific_test_case") != name or tags.get("test_name") != name.split("[")[0]:
        problems.append(f"{name}: test_name/specific_test_case {tags.get('test_name')!r}/{tags.get('specific_test_case')!r}")
    if props["owner"] != properties.OWNER:
        problems.append(f"{name}: owner {props['owner']!r}")
    if not all(isinstance(v, (str, dict)) for v in tags.values()):
        problems.append(f"{name}: tag values must be strings: {tags}")
    model_test = "group" in names
    keys = [k for k in tags if k not in ("test_name", "specific_test_case")] + ["model_group"] * model_test
    try:
        properties.validate_keys(keys, model_test=model_test)
    except KeyError as e:
        problems.append(f"{name}: {e}")
    if model_test and (props["group"] != properties.MODEL_GROUP or tags.get("model_name") != properties.MODEL_NAME):
        problems.append(f"{name}: group {props['group']!r}, model_name {tags.get('model_name')!r}")
    return problems


def check(path: str) -> tuple:
    """(cases, model test cases, problems) of a junit file."""
    cases = list(ET.parse(path).getroot().iter("testcase"))
    problems = [p for case in cases for p in check_case(case)]
    models = sum("group" in case_properties(case)["names"] for case in cases)
    return cases, models, problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.jax.models.qwen2_5.testing.junit_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("junit")
    p.add_argument("--min-cases", type=int, default=1, help="fail when the file holds fewer test cases")
    p.add_argument("--measured", nargs="*", default=(), metavar="TEST",
                   help="tests whose every passed case must carry its measured pcc and atol in the tags")
    p.add_argument("--require-property", nargs="*", default=(), metavar="NAME",
                   help="properties every passed case must carry (tt-emulated: tt_target, tt_ops_executed)")
    args = p.parse_args(argv)
    cases, models, problems = check(args.junit)
    for case in cases:
        if list(case.iter("skipped")) or list(case.iter("failure")) or list(case.iter("error")):
            continue
        missing = [n for n in args.require_property if n not in case_properties(case)]
        if missing:
            problems.append(f"{case.get('name')}: no {', '.join(missing)} property")
    measured = 0
    for case in cases:
        tags = ast.literal_eval(case_properties(case).get("tags") or "{}")
        if "pcc" in tags and "atol" in tags:
            measured += 1
        elif case.get("name").split("[")[0] in args.measured and not list(case.iter("skipped")):
            problems.append(f"{case.get('name')}: no measured pcc/atol in its tags")
    print(f"{args.junit}: {len(cases)} test cases, {models} model tests with tt-xla's group and tags, "
          f"{measured} with measured pcc and atol, {len(problems)} problems")
    if len(cases) < args.min_cases:
        problems.append(f"only {len(cases)} test cases (at least {args.min_cases} expected)")
    for line in problems[:20]:
        print(f"  {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
