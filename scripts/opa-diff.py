#!/usr/bin/env python3
"""Runs the OPA differential corpus (fixtures/opa-diff) through OPA 1.20 and writes what OPA
answers to fixtures/opa-diff/expected.json, plus OPA's builtin list (opa-builtins.json).

Needs the `opa_bindings` module (PyPI opa-golib-python-bindings); scripts/opa-diff installs it.
Case formats are described in fixtures/opa-diff/README.md.
"""
import json
import os
import re
import sys

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "opa-diff")


def expr_cases():
    for fname in sorted(os.listdir(os.path.join(ROOT, "exprs"))):
        family = fname.rsplit(".", 1)[0]
        with open(os.path.join(ROOT, "exprs", fname), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    continue
                name, expr = line.split(" :: ", 1)
                yield {
                    "name": f"{family}/{name}",
                    "policy": f"package t\n\nr := {expr}\n",
                    "query": "t.r",
                    "input": "input.json",
                }


def policy_cases():
    pdir = os.path.join(ROOT, "policies")
    for fname in sorted(os.listdir(pdir)):
        if not fname.endswith(".rego") or fname.endswith(".v0.rego"):
            continue
        text = open(os.path.join(pdir, fname), encoding="utf-8").read()
        header = dict(re.findall(r"^# (\w+): (.*)$", text, re.M))
        yield {
            "name": "policies/" + fname[: -len(".rego")],
            "policy": text,
            "query": header.get("query", "data.t.r").removeprefix("data."),
            "input": header.get("input"),
        }


def modules(text):
    """A case's modules: `case.rego`, then one per `# module: NAME.rego` line."""
    parts = re.split(r"^# module: (\S+)$", text, flags=re.M)
    out = [("case.rego", parts[0])]
    out += [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    return out


def run(case):
    engine = OpaEngine()
    try:
        inp = None
        if case["input"] == "input.json":
            inp = json.load(open(os.path.join(ROOT, "input.json"), encoding="utf-8"))
        elif case["input"]:
            inp = json.loads(case["input"])
        for name, text in modules(case["policy"]):
            engine.add_policy(name, text)
        return {"value": engine.eval_document(case["query"], inp)}
    except OpaUndefinedError:
        return {"undefined": True}
    except OpaError as e:
        return {"error": e.message.splitlines()[0][:300]}
    finally:
        engine.close()


def kinds(t):
    """The top-level kinds a declared type accepts: None for any, else a sorted list."""
    if t.get("type") == "any":
        if not t.get("of"):
            return None
        out = set()
        for member in t["of"]:
            k = kinds(member)
            if k is None:
                return None
            out.update(k)
        return sorted(out)
    return [t.get("type")]


def builtins():
    """OPA's own capabilities document is embedded in the library; its builtin list is read
    from there (the newest, largest capabilities file)."""
    import opa_bindings

    lib = os.path.join(os.path.dirname(opa_bindings.__file__), "libopabridge.so")
    blob = open(lib, "rb").read()
    dec = json.JSONDecoder()
    best = None
    for m in re.finditer(rb'\{\s*"builtins": \[', blob):
        try:
            obj, _ = dec.raw_decode(blob[m.start() : m.start() + 4_000_000].decode("utf-8", "ignore"))
        except ValueError:
            continue
        if best is None or len(obj["builtins"]) > len(best["builtins"]):
            best = obj
    out = []
    for b in sorted(best["builtins"], key=lambda b: b["name"]):
        decl = b.get("decl", {})
        out.append({
            "name": b["name"],
            "arity": len(decl.get("args", [])) if "variadic" not in decl else -1,
            # Per argument, the kinds of value OPA's type checker accepts (null: any).
            "arg_kinds": [kinds(a) for a in decl.get("args", [])],
            "infix": b.get("infix"),
            "deprecated": bool(b.get("deprecated")),
            "nondeterministic": bool(b.get("nondeterministic")),
        })
    return out


def check_cases():
    """fixtures/opa-diff/check/NAME.rego: one module each, compiled as `opa check` compiles."""
    cdir = os.path.join(ROOT, "check")
    for fname in sorted(os.listdir(cdir)):
        if fname.endswith(".rego"):
            yield fname[: -len(".rego")], open(os.path.join(cdir, fname), encoding="utf-8").read()


ERROR_LINE = re.compile(r"^case\.rego:(\d+): (rego_\w+): (.*)$")


def compile_errors(text):
    """OPA's compile errors of one module: [{row, code, message}] (first line of each message),
    [] when it compiles. Any query compiles (activates) the whole set first."""
    engine = OpaEngine()
    try:
        engine.add_policy("case.rego", text)
        engine.eval_query("true")
        return []
    except OpaError as e:
        out = []
        for line in e.message.replace("bundle activation failed: ", "").splitlines():
            line = re.sub(r"^\d+ errors? occurred: ", "", line)
            m = ERROR_LINE.match(line)
            if m:
                out.append({"row": int(m.group(1)), "code": m.group(2), "message": m.group(3)})
        # OPA's order of errors on one line is not stable.
        out.sort(key=lambda x: (x["row"], x["code"], x["message"]))
        return out or [{"row": 0, "code": "error", "message": e.message.splitlines()[0]}]
    finally:
        engine.close()


def main():
    checks = {name: compile_errors(text) for name, text in check_cases()}
    with open(os.path.join(ROOT, "check-expected.json"), "w", encoding="utf-8") as f:
        json.dump(checks, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"{len(checks)} check cases: {sum(1 for v in checks.values() if v)} refused by OPA",
          file=sys.stderr)
    cases = list(expr_cases()) + list(policy_cases())
    expected = {c["name"]: run(c) for c in cases}
    with open(os.path.join(ROOT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(ROOT, "opa-builtins.json"), "w", encoding="utf-8") as f:
        json.dump(builtins(), f, indent=1)
        f.write("\n")
    errors = sum(1 for v in expected.values() if "error" in v)
    undefined = sum(1 for v in expected.values() if "undefined" in v)
    print(f"{len(expected)} cases: {len(expected) - errors - undefined} values, "
          f"{undefined} undefined, {errors} errors", file=sys.stderr)


if __name__ == "__main__":
    main()
