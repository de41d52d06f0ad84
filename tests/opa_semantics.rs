//! OPA semantics the differential corpus cannot check (the oracle runs strict), the patches
//! carried on regorus (vendor/PATCHES.md, one test each), the refused builtins and bad input:
//! each through the real `sluice` binary, each bad input one clear line and no panic.

mod support;

use std::path::{Path, PathBuf};

use support::{Ran as Output, TempDir, sluice};

/// Writes a policy (bytes, so that non-UTF-8 can be tested) into `dir`.
fn policy(dir: &TempDir, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(&format!("{name}.rego"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn eval(file: &Path, extra: &[&str], query: &str) -> Output {
    let file = file.display().to_string();
    let mut args = vec!["eval", "--format", "raw", "-d", file.as_str()];
    args.extend(extra);
    args.push(query);
    sluice(&args)
}

/// Exit 1, one line on stderr that contains `needle`, no panic.
fn assert_one_error(out: &Output, needle: &str) {
    assert_eq!(out.code, 1, "exit code; stderr: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {:?}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "{:?} lacks {needle:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_builtin_error_is_undefined_by_default_and_an_error_when_strict() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "nonstrict",
        b"package t\n\nr := to_number(\"abc\")\n\ns := crypto.sha256(to_number(\"1\"))\n\ndefault d := \"fallback\"\n\nd := x if x := to_number(\"abc\")\n",
    );
    for rule in ["data.t.r", "data.t.s"] {
        let out = eval(&p, &[], rule);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, ""),
            "{rule}: {}",
            out.stderr
        );
        let strict = eval(&p, &["--strict-builtin-errors"], rule);
        let needle = if rule == "data.t.r" {
            "could not parse string as number"
        } else {
            "crypto.sha256: operand 1 must be string but got number"
        };
        assert_one_error(&strict, needle);
    }
    let out = eval(&p, &[], "data.t.d");
    assert_eq!(out.stdout, "fallback\n");
}

#[test]
fn patch_1_an_undefined_argument_inside_not_makes_the_not_fail() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "not_undefined",
        b"package t\n\nf(x) := true if x == 1\n\nr if not f(input.missing)\n\ns if not input.missing == 1\n",
    );
    assert_eq!(eval(&p, &[], "data.t.r").stdout, "", "OPA: undefined");
    assert_eq!(
        eval(&p, &[], "data.t.s").stdout,
        "true\n",
        "plain == stays true"
    );
}

#[test]
fn patch_2_a_paren_on_a_new_line_starts_a_new_literal() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "paren_literal",
        b"package t\n\nr := x if {\n\ty := [1]\n\tx := y\n\t(1 == 1)\n}\n",
    );
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "[\n  1\n]\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn patch_3_an_unsafe_variable_is_one_error_line() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "unsafe",
        b"package t\n\nr := x if {\n\tx := count\n\t([1, 2])\n}\n",
    );
    assert_one_error(&eval(&p, &[], "data.t.r"), "var count is unsafe");
}

#[test]
fn network_builtins_are_refused_before_evaluation_with_their_position() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "http_send",
        b"package t\n\nr := x if {\n\tx := http.send({\"method\": \"get\", \"url\": \"http://cloud.example.com/\"})\n}\n",
    );
    let file = p.display().to_string();
    let out = sluice(&["check", &file]);
    assert_one_error(
        &out,
        &format!("{file}:4:7: http.send is not available in sluice"),
    );
    let q = policy(
        &dir,
        "lookup",
        b"package t\n\nr := net.lookup_ip_addr(\"cloud.example.com\")\n",
    );
    assert_one_error(
        &eval(&q, &[], "data.t.r"),
        "net.lookup_ip_addr is not available",
    );
    let mock = policy(
        &dir,
        "mock",
        b"package t\n\ntest_mocked if { true with http.send as {} }\n",
    );
    let out = sluice(&["check", &mock.display().to_string()]);
    assert_eq!(out.stderr, "", "a mock is not a call");
}

#[test]
fn bad_input_gives_one_clear_error_each() {
    let dir = TempDir::new("opa-semantics");
    let cases: &[(&str, &[u8], &str)] = &[
        ("arity", b"package t\n\nr := net.cidr_merge([\"10.0.0.0/8\"], 1)\n", "rego_type_error: net.cidr_merge: arity mismatch"),
        ("types", b"package t\n\nr := net.cidr_merge(x) if x := 1\n", "net.cidr_merge: operand 1 must be set of strings or array of strings but got number"),
        ("types_constant", b"package t\n\nr := net.cidr_merge(1)\n", "rego_type_error: net.cidr_merge: invalid argument(s)"),
        ("jwt", b"package t\n\nr := io.jwt.decode(\"not.a.jwt\")\n", "io.jwt.decode: failed to decode JWT"),
        ("jwt_sections", b"package t\n\nr := io.jwt.verify_hs256(\"abc\", \"k\")\n", "encoded JWT must have 3 sections"),
        ("jwt_key", b"package t\n\nr := io.jwt.verify_rs256(\"eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln\", \"not a key\")\n", "failed to parse a JWK key"),
        ("recursion", b"package t\n\nr if r\n", "recursion"),
        ("huge_expand", b"package t\n\nr := net.cidr_expand(\"10.0.0.0/8\")\n", "has 16777216 addresses"),
        ("non_utf8", b"package t\n\nr := \"\xff\xfe\"\n", "not valid UTF-8"),
    ];
    for (name, text, needle) in cases {
        let p = policy(&dir, name, text);
        assert_one_error(&eval(&p, &["--strict-builtin-errors"], "data.t.r"), needle);
    }
}

#[test]
fn huge_cidr_lists_are_refused_not_followed() {
    let dir = TempDir::new("opa-semantics");
    let list: Vec<String> = (0..70_000u32)
        .map(|i| format!("10.{}.{}.0/24", i / 256 % 256, i % 256))
        .collect();
    let p = policy(
        &dir,
        "huge_merge",
        b"package t\n\nr := net.cidr_merge(input.cidrs)\n",
    );
    let input = p.with_file_name("huge_merge.json");
    let doc = serde_json::json!({ "cidrs": list });
    std::fs::write(&input, doc.to_string()).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let input = input.display().to_string();
    assert_one_error(
        &eval(&p, &["--strict-builtin-errors", "-i", &input], "data.t.r"),
        "net.cidr_merge: more than 65536 addresses",
    );
    let out = eval(&p, &["-i", &input], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, ""),
        "non-strict: undefined"
    );
}

#[test]
fn patch_4_sprintf_and_json_patch_fail_as_opa_does_and_never_panic() {
    let dir = TempDir::new("opa-semantics");
    let missing = policy(
        &dir,
        "missing",
        b"package t\n\nr := sprintf(\"%s %d\", [\"a\"])\n",
    );
    let out = eval(&missing, &[], "data.t.r");
    assert_eq!((out.code, out.stdout.as_str()), (0, "a %!d(MISSING)\n"));
    // A non-ASCII digit after `%` made regorus panic.
    let digit = policy(
        &dir,
        "digit",
        "package t\n\nr := sprintf(\"%\u{663}d\", [1])\n".as_bytes(),
    );
    // Now (patch 10) it prints as Go prints it.
    let out = eval(&digit, &["--strict-builtin-errors"], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "%!\u{663}(int64=1)d\n"),
        "{}",
        out.stderr
    );
    let bad_op = policy(
        &dir,
        "bad_op",
        b"package t\n\nr := json.patch({\"a\": 1}, [{\"op\": \"nope\", \"path\": \"/b\"}])\n",
    );
    assert_one_error(
        &eval(&bad_op, &["--strict-builtin-errors"], "data.t.r"),
        "json.patch: unrecognized op 'nope'",
    );
    let out = eval(&bad_op, &[], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, ""),
        "undefined by default"
    );
}

#[test]
fn patch_5_rules_and_functions_resolve_in_their_own_module_however_they_alternate() {
    // The module's path is now computed once per module and cached; calls that go back and
    // forth between two packages must still resolve relative names in the right one.
    let dir = TempDir::new("opa-semantics");
    policy(
        &dir,
        "a",
        b"package a\n\nimport data.b\n\ng(x) := x * 10\n\nr := b.f(1) + g(2) + b.f(3)\n",
    );
    policy(
        &dir,
        "b",
        b"package b\n\nimport data.a\n\ng(x) := x + 1000\n\nf(x) := a.g(x) + g(0)\n",
    );
    let dir_arg = dir.path().display().to_string();
    let out = sluice(&["eval", "--format", "raw", "-d", &dir_arg, "data.a.r"]);
    // b.f(1) = 10 + 1000, g(2) = 20, b.f(3) = 30 + 1000.
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "2060\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn patch_6_an_object_from_sorted_entries_equals_one_built_key_by_key() {
    use regorus::Value;
    use regorus::value::Object;
    let entries = vec![
        (Value::from("a"), Value::from(1u64)),
        (Value::from("b"), Value::from("x")),
        (Value::from("c"), Value::from(true)),
    ];
    let map: std::collections::BTreeMap<Value, Value> = entries.iter().cloned().collect();
    let fast = Object::from_sorted_entries(entries.clone()).map(Object::into_value);
    assert_eq!(fast.ok(), Some(Value::from(map)));
    // Out of order or a key twice: refused, the entries given back.
    let mut swapped = entries.clone();
    swapped.swap(0, 1);
    assert_eq!(
        Object::from_sorted_entries(swapped.clone()).err(),
        Some(swapped)
    );
    let mut twice = entries;
    twice[1].0 = Value::from("a");
    assert!(Object::from_sorted_entries(twice).is_err());
    assert!(Object::from_sorted_entries(Vec::new()).is_ok());
}

#[test]
fn patch_7_rules_evaluated_together_give_what_each_gives_alone() {
    use regorus::{Engine, Value};
    let mut engine = Engine::new();
    engine
        .add_policy(
            "t.rego".into(),
            "package t\n\nhelper if input.x == 1\n\ndefault allow := false\n\nallow if helper\n\n\
             deny contains \"not one\" if not helper\n\n\
             deny contains m if { input.x == 3; m := sprintf(\"%d\", [input.x]) }\n\n\
             broken := 1 / input.zero\n"
                .into(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for x in [1, 2, 3] {
        engine.set_input(Value::from_json_str(&format!("{{\"x\": {x}}}")).unwrap_or(Value::Null));
        let alone = [
            engine.eval_rule("data.t.allow".into()).ok(),
            engine.eval_rule("data.t.deny".into()).ok(),
        ];
        let together = engine
            .eval_rules(&["data.t.allow", "data.t.deny"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            together.into_iter().map(Some).collect::<Vec<_>>(),
            alone.to_vec(),
            "x = {x}"
        );
    }
    // An error in one rule is the error of the whole evaluation, as with a single rule.
    engine.set_input(Value::from_json_str("{\"x\": 1, \"zero\": 0}").unwrap_or(Value::Null));
    let single = engine.eval_rule("data.t.broken".into()).is_err();
    let together = engine
        .eval_rules(&["data.t.allow", "data.t.broken"])
        .is_err();
    assert_eq!(together, single);
}

#[test]
fn patch_12_string_keys_are_found_without_a_value_made_of_them() {
    use regorus::value::Object;
    use regorus::{Engine, Value};
    // Keys of every kind around the strings, in compact (sorted) and map storage, small and
    // past the size searched key by key: `get_str` finds what `get` finds.
    let mut keys = vec![
        Value::Null,
        Value::from(false),
        Value::from(7u64),
        Value::from(vec![Value::from("b")]),
        Value::new_set(),
        Value::new_object(),
    ];
    keys.extend(["", "a", "b", "ba", "m", "é"].map(Value::from));
    let probes = ["", "a", "b", "ba", "bb", "m", "z", "é", "7", "null"];
    let map_of = |keys: &[Value]| -> std::collections::BTreeMap<Value, Value> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), Value::from(i as u64)))
            .collect()
    };
    // 12 keys (searched key by key as a map); 24 with many numbers before the strings (a
    // binary search that misorders them misses); 64.
    let small = map_of(&keys);
    keys.extend((100..112u64).map(Value::from));
    let numbers = map_of(&keys);
    keys.extend((0..40u64).map(|i| Value::from(format!("k{i:02}"))));
    let large = map_of(&keys);
    for map in [small, numbers, large] {
        let frozen = Object::from_sorted_entries(map.clone().into_iter().collect())
            .unwrap_or_else(|_| panic!("entries of a map are sorted"));
        let btree = Object::from(map.clone());
        for obj in [&frozen, &btree] {
            for k in probes.iter().copied().chain(["k00", "k39", "k4"]) {
                assert_eq!(obj.get_str(k), obj.get(&Value::from(k)), "{k:?}");
                // A write through `get_str_mut` lands where `get` looks.
                let mut changed = obj.clone();
                let found = changed.get_str_mut(k).map(|v| *v = Value::from("changed"));
                assert_eq!(found.is_some(), obj.get(&Value::from(k)).is_some(), "{k:?}");
                if found.is_some() {
                    assert_eq!(changed.get(&Value::from(k)), Some(&Value::from("changed")));
                }
            }
        }
    }
    // Through the interpreter: input fields (compact storage), a package with more rules than
    // the small-map bound (map storage once evaluated), rules read back from data.
    let mut rules = String::from("package t\n\n");
    for i in 0..20 {
        rules.push_str(&format!("r{i} := input.a.b[{i}]\n"));
    }
    rules.push_str("sum := r0 + r19 + data.t.r7\nmissing := input.a.nope\n");
    let mut engine = Engine::new();
    engine
        .add_policy("t.rego".into(), rules)
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Vec<String> = (0..20).map(|i| (i * 10).to_string()).collect();
    let input = format!("{{\"a\": {{\"b\": [{}], \"c\": 1}}}}", list.join(","));
    engine.set_input(Value::from_json_str(&input).unwrap_or(Value::Null));
    let got = engine
        .eval_rules(&["data.t.sum", "data.t.missing", "data.t.r13"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got,
        vec![Value::from(260u64), Value::Undefined, Value::from(130u64)]
    );
}

#[test]
fn deprecated_builtins_run_in_rego_v0_only_as_in_opa() {
    let dir = TempDir::new("opa-semantics");
    let v0 = policy(
        &dir,
        "v0",
        b"package t\n\nr = re_match(\"^reg\", input.image)\n\ns = cast_set(x) { x := input.n }\n",
    );
    std::fs::write(
        dir.join("input.json"),
        br#"{"image": "registry.plant.local/a", "n": 5}"#,
    )
    .unwrap_or_else(|e| panic!("input: {e}"));
    let run = |query: &str, strict: bool| {
        let mut args = vec![
            "eval".to_string(),
            "--format".into(),
            "raw".into(),
            "--v0-compatible".into(),
            "-d".into(),
            v0.display().to_string(),
            "--input".into(),
            dir.join("input.json").display().to_string(),
        ];
        if strict {
            args.push("--strict-builtin-errors".into());
        }
        args.push(query.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&args)
    };
    let out = run("data.t.r", false);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "true\n"),
        "{}",
        out.stderr
    );
    // A number reaching cast_set through a variable: undefined by default, OPA's error if strict.
    let out = run("data.t.s", false);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    assert_one_error(
        &run("data.t.s", true),
        "cast_set: operand 1 must be one of {set, array} but got number",
    );
    // In a v1 module, and in a v0 module that imports rego.v1, OPA refuses the call at load.
    let v1 = policy(&dir, "v1", b"package t\n\nr := any([true])\n");
    assert_one_error(
        &eval(&v1, &[], "data.t.r"),
        "v1.rego:3:6: rego_type_error: deprecated built-in function calls in expression: any",
    );
    let imported = policy(
        &dir,
        "imported",
        b"package t\n\nimport rego.v1\n\nr := cast_string(\"s\")\n",
    );
    let file = imported.display().to_string();
    assert_one_error(
        &sluice(&["eval", "--v0-compatible", "-d", &file, "data.t.r"]),
        "deprecated built-in function calls in expression: cast_string",
    );
}

#[test]
fn patch_8_big_integers_are_written_exactly_in_json() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "big",
        b"package t\n\nr := 123456789012345678900 + 1\n\nj := json.marshal([123456789012345678900, 1])\n\ny := yaml.marshal(123456789012345678900)\n",
    );
    assert_eq!(eval(&p, &[], "data.t.r").stdout, "123456789012345678901\n");
    let file = p.display().to_string();
    let out = sluice(&["eval", "--format", "json", "-d", &file, "data.t.r"]);
    assert!(
        out.stdout.contains("\"value\": 123456789012345678901"),
        "{}",
        out.stdout
    );
    assert_eq!(
        eval(&p, &[], "data.t.j").stdout,
        "[123456789012345678900,1]\n"
    );
    // OPA's yaml.marshal prints the float; so does sluice's (no raw JSON in YAML).
    let y = eval(&p, &[], "data.t.y").stdout;
    assert!(
        y.starts_with("1.234567890123456") && y.contains('e'),
        "{y:?}"
    );
}

#[test]
fn a_schema_ref_outside_the_schema_is_refused_not_fetched() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "remote_ref",
        br##"package t

v := json.verify_schema({"$ref": "http://schemas.plant.local/press.json"})

m := json.match_schema({"a": 1}, {"properties": {"a": {"$ref": "https://schemas.plant.local/a.json"}}})

local := json.match_schema({"a": 1}, {"$ref": "#/definitions/a", "definitions": {"a": {"required": ["b"]}}})
"##,
    );
    let out = eval(&p, &[], "data.t.v");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("false,")
            && out.stdout.contains(
                "\"jsonschema: $ref http://schemas.plant.local/press.json is not fetched: sluice resolves only references into the same schema"
            ),
        "{}",
        out.stdout
    );
    assert_one_error(
        &eval(&p, &["--strict-builtin-errors"], "data.t.m"),
        "json.match_schema: $ref https://schemas.plant.local/a.json is not fetched",
    );
    // Undefined by default, as every builtin error is.
    assert_eq!(eval(&p, &[], "data.t.m").stdout, "");
    let local = eval(&p, &[], "data.t.local").stdout;
    assert!(local.contains("b is required"), "{local}");
}

#[test]
fn template_strings_work_and_a_broken_one_is_one_error_with_its_place() {
    let dir = TempDir::new("opa-semantics");
    let ok = policy(
        &dir,
        "template",
        b"package t\n\nr := $\"line {input.line} of {count([1, 2])}\"\n\nm := $`missing {input.nope}`\n",
    );
    let file = ok.display().to_string();
    std::fs::write(dir.join("in.json"), br#"{"line": 4}"#).unwrap_or_else(|e| panic!("{e}"));
    let input = dir.join("in.json").display().to_string();
    let out = sluice(&[
        "eval", "--format", "raw", "-d", &file, "-i", &input, "data.t.r",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "line 4 of 2\n"),
        "{}",
        out.stderr
    );
    assert_eq!(eval(&ok, &[], "data.t.m").stdout, "missing <undefined>\n");
    let broken = policy(&dir, "broken", b"package t\n\nr := $\"{}\"\n");
    assert_one_error(
        &eval(&broken, &[], "data.t.r"),
        "broken.rego:3:9: rego_parse_error: invalid template-string expression",
    );
}

#[test]
fn patch_9_brackets_nested_to_the_depth_limit_load_at_once() {
    // Each level used to be tried as a comprehension once per enclosing attempt: 2^depth parses,
    // minutes at 20 levels, hours at 30, so one ConstraintTemplate could stall a load. With the
    // patch this finishes at once; without it the test never does.
    let dir = TempDir::new("opa-semantics");
    let depth = 28;
    let open: String = (0..depth)
        .map(|i| if i % 2 == 0 { "[" } else { "{" })
        .collect();
    let close: String = (0..depth)
        .rev()
        .map(|i| if i % 2 == 0 { "]" } else { "}" })
        .collect();
    let text = format!("package t\n\nr := count({open}[x | some x in [1, 2]]{close})\n");
    let p = policy(&dir, "nested", text.as_bytes());
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "1\n"),
        "{}",
        out.stderr
    );
    // A comprehension found after backtracking is still a comprehension.
    let p = policy(
        &dir,
        "compr",
        b"package t\n\nr := [[[y | some y in [3, 4]], {z | some z in [5]}], {1: [w | w := 6]}]\n",
    );
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.split_whitespace().collect::<String>(),
        r#"[[[3,4],[5]],{"1":[6]}]"#
    );
}

#[test]
fn an_expression_too_deep_for_the_stack_is_one_error_not_a_crash() {
    // 3,000 terms of `1 + 1 + …` over 30 lines: regorus's syntax tree for it overflows the stack
    // when dropped, which aborted the process; now it is refused before it is parsed.
    let dir = TempDir::new("opa-semantics");
    let line = vec!["1"; 100].join(" + ");
    let text = format!("package t\n\nr := {}\n", vec![line; 30].join(" +\n"));
    let p = policy(&dir, "chain", text.as_bytes());
    let out = eval(&p, &[], "data.t.r");
    assert_one_error(
        &out,
        "expression nested more than 200 deep is not supported by sluice",
    );
    assert!(out.stderr.contains("chain.rego:"), "{}", out.stderr);
    let out = sluice(&["check", p.to_str().unwrap_or_default()]);
    assert_one_error(&out, "expression nested more than 200 deep");
    // A long chain within the bound is evaluated as OPA does.
    let text = format!("package t\n\nr := {}\n", vec!["1"; 150].join(" + "));
    let p = policy(&dir, "short_chain", text.as_bytes());
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "150\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn patch_10_sprintf_prints_bad_verbs_and_extra_arguments_as_go_does() {
    // regorus refused these with an error (undefined in the default mode), so a message built
    // with `sprintf("%s", [n])` vanished where OPA prints `%!s(int64=3)`.
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "sprintf",
        "package t\n\nr := [sprintf(\"%s\", [3]), sprintf(\"%d\", [\"a\"]), sprintf(\"%d\", [1, 2.5, \"x\"]), sprintf(\"%٣d\", [1])]\n".as_bytes(),
    );
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<String> = serde_json::from_str(&out.stdout).unwrap_or_default();
    assert_eq!(
        got,
        [
            "%!s(int64=3)",
            "%!d(string=a)",
            "1%!(EXTRA float64=2.5, string=x)",
            "%!٣(int64=1)d"
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn patch_11_upper_and_lower_map_rune_by_rune_as_go_does() {
    // Rust's full case mappings wrote `SS` for `ß`, `i̇` for `İ` and `ς` for a final `Σ`.
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "case",
        "package t\n\nr := [upper(\"straße ᾳ\"), lower(\"İSTANBUL ΟΔΟΣ\"), lower(\"Plant-7\")]\n"
            .as_bytes(),
    );
    let out = eval(&p, &[], "data.t.r");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got: Vec<String> = serde_json::from_str(&out.stdout).unwrap_or_default();
    assert_eq!(
        got,
        ["STRAßE ᾼ", "istanbul οδοσ", "plant-7"],
        "{}",
        out.stdout
    );
}

#[test]
fn deeply_nested_graphql_is_an_error_not_a_stack_overflow() {
    let dir = TempDir::new("opa-semantics");
    let p = policy(
        &dir,
        "deep_graphql",
        b"package t\n\nr := graphql.parse_query(input.q)\n\nv := graphql.is_valid(input.q, \"type Query { a: Int }\")\n",
    );
    let input = p.with_file_name("deep_graphql.json");
    let query = "{ a ".repeat(100_000) + &"}".repeat(100_000);
    let doc = serde_json::json!({ "q": query });
    std::fs::write(&input, doc.to_string()).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let input = input.display().to_string();
    assert_one_error(
        &eval(&p, &["--strict-builtin-errors", "-i", &input], "data.t.r"),
        "graphql.parse_query: document nested deeper than 200 levels",
    );
    let out = eval(&p, &["-i", &input], "data.t.v");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "false\n"),
        "is_valid is false"
    );
}
