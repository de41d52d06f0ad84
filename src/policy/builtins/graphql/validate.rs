//! gqlparser's query validator: its walker (operations first, then fragments; a spread's
//! fragment walked in place once per operation) and its default rules, each reporting where
//! gqlparser reports. OverlappingFieldsCanBeMerged follows graphql-js's algorithm without its
//! caches, with a bound on the comparisons.

use std::collections::{HashMap, HashSet};

use super::GqlError;
use super::ast::*;
use super::schema::Schema;

/// How deep the walker follows fields and fragment spreads; past it the query is invalid.
const MAX_WALK_DEPTH: usize = 500;
/// How many field pairs OverlappingFieldsCanBeMerged compares before it stops looking.
const MAX_OVERLAP_PAIRS: usize = 100_000;

pub fn validate(schema: &Schema, doc: &QueryDocument) -> Vec<GqlError> {
    let frags = index(doc);
    let mut w = Walker {
        schema,
        doc,
        frags: frags.clone(),
        errors: Vec::new(),
        op: None,
        used_vars: HashSet::new(),
        validated_spreads: HashSet::new(),
        in_fragment_definition: false,
        fragment_used: HashSet::new(),
        depth: 0,
    };
    for op in &doc.operations {
        w.validated_spreads.clear();
        w.walk_operation(op);
    }
    for f in &doc.fragments {
        w.validated_spreads.clear();
        w.walk_fragment(f);
    }
    no_fragment_cycles(&mut w);
    let mut overlap = Overlap {
        schema,
        frags,
        pairs: 0,
        errors: Vec::new(),
    };
    for op in &doc.operations {
        let def = schema.root(&op.operation);
        overlap.selection_sets(&op.selections, def, 0);
    }
    for f in &doc.fragments {
        let def = schema.types.get(&f.type_condition);
        overlap.selection_sets(&f.selections, def, 0);
    }
    w.errors.extend(overlap.errors);
    w.errors
}

struct Walker<'a> {
    schema: &'a Schema,
    doc: &'a QueryDocument,
    frags: Frags<'a>,
    errors: Vec<GqlError>,
    op: Option<&'a OperationDefinition>,
    used_vars: HashSet<String>,
    validated_spreads: HashSet<String>,
    in_fragment_definition: bool,
    fragment_used: HashSet<String>,
    depth: usize,
}

/// What the walker knows of a value: its expected type and that type's definition.
#[derive(Clone, Copy)]
struct Expect<'a> {
    ty: Option<&'a Type>,
    def: Option<&'a Definition>,
    has_default: bool,
}

const NONE: Expect<'static> = Expect {
    ty: None,
    def: None,
    has_default: false,
};

/// The field every selection set has, `__typename: String!`.
fn typename() -> &'static FieldDefinition {
    static DEF: std::sync::OnceLock<FieldDefinition> = std::sync::OnceLock::new();
    DEF.get_or_init(|| FieldDefinition {
        name: "__typename".to_string(),
        ty: Type::named("String", true),
        ..Default::default()
    })
}

/// The fragments by name, the first of a name counting (gqlparser's `GetFragment`).
type Frags<'a> = HashMap<&'a str, &'a FragmentDefinition>;

fn index(doc: &QueryDocument) -> Frags<'_> {
    let mut out = HashMap::new();
    for f in &doc.fragments {
        out.entry(f.name.as_str()).or_insert(f);
    }
    out
}

fn fragment<'a>(frags: &Frags<'a>, name: &str) -> Option<&'a FragmentDefinition> {
    frags.get(name).copied()
}

impl<'a> Walker<'a> {
    fn error(&mut self, pos: Pos, message: String) {
        let pos = (pos != Pos::default()).then_some(pos);
        self.errors.push(GqlError { message, pos });
    }

    fn ty(&self, name: &str) -> Option<&'a Definition> {
        self.schema.types.get(name)
    }

    fn walk_operation(&mut self, op: &'a OperationDefinition) {
        self.op = Some(op);
        self.used_vars.clear();
        let (def, loc) = match op.operation.as_str() {
            "mutation" => (self.schema.root("mutation"), "MUTATION"),
            "subscription" => (self.schema.root("subscription"), "SUBSCRIPTION"),
            _ => (self.schema.root("query"), "QUERY"),
        };
        self.walk_directives(def, &op.directives, loc);
        for vd in &op.variables {
            if let Some(d) = &vd.default {
                let e = Expect {
                    ty: Some(&vd.ty),
                    def: self.ty(vd.ty.name()),
                    has_default: false,
                };
                self.walk_value(d, e);
            }
            self.walk_directives(None, &vd.directives, "VARIABLE_DEFINITION");
        }
        for s in &op.selections {
            self.walk_selection(def, s);
        }
        self.on_operation(op);
        self.op = None;
    }

    fn walk_fragment(&mut self, f: &'a FragmentDefinition) {
        let def = self.ty(&f.type_condition);
        self.walk_directives(def, &f.directives, "FRAGMENT_DEFINITION");
        self.on_fragment(f, def);
        for s in &f.selections {
            self.walk_selection(def, s);
        }
    }

    fn walk_directives(&mut self, _parent: Option<&Definition>, dirs: &'a [Directive], loc: &str) {
        for dir in dirs {
            let def = self.schema.directives.get(&dir.name);
            self.on_directive(dir, def, loc);
            for arg in &dir.arguments {
                let ad = def.and_then(|d| d.arguments.iter().find(|a| a.name == arg.name));
                self.walk_argument(ad, arg);
            }
        }
        // UniqueDirectivesPerLocation
        let mut seen: HashSet<&str> = HashSet::new();
        for dir in dirs {
            let repeatable = self
                .schema
                .directives
                .get(&dir.name)
                .is_some_and(|d| d.repeatable);
            if !repeatable && !seen.insert(dir.name.as_str()) {
                self.error(
                    dir.pos,
                    format!(
                        "The directive \"@{}\" can only be used once at this location.",
                        dir.name
                    ),
                );
            }
        }
    }

    fn walk_argument(&mut self, ad: Option<&'a ArgumentDefinition>, arg: &'a Argument) {
        let e = match ad {
            Some(ad) => Expect {
                ty: Some(&ad.ty),
                def: self.ty(ad.ty.name()),
                has_default: ad.default.as_ref().is_some_and(|d| d.kind != kind::NULL),
            },
            None => NONE,
        };
        self.walk_value(&arg.value, e);
    }

    fn walk_value(&mut self, v: &'a Value, e: Expect<'a>) {
        if self.depth > MAX_WALK_DEPTH {
            return;
        }
        self.depth += 1;
        let mut var_def = None;
        if v.kind == kind::VARIABLE {
            if let Some(op) = self.op {
                var_def = op.variables.iter().find(|d| d.variable == v.raw);
                if var_def.is_some() {
                    self.used_vars.insert(v.raw.clone());
                }
            }
        }
        self.on_value(v, e, var_def);
        if v.kind == kind::OBJECT {
            for c in &v.children {
                let mut ce = NONE;
                if let Some(def) = e.def {
                    if let Some(fd) = def.field(&c.name) {
                        ce = Expect {
                            ty: Some(&fd.ty),
                            def: self.ty(fd.ty.name()),
                            has_default: fd.default.as_ref().is_some_and(|d| d.kind != kind::NULL),
                        };
                    }
                }
                self.walk_value(&c.value, ce);
            }
        }
        if v.kind == kind::LIST {
            for c in &v.children {
                let mut ce = NONE;
                if let Some(elem) = e.ty.and_then(|t| t.elem.as_deref()) {
                    ce = Expect {
                        ty: Some(elem),
                        def: e.def,
                        has_default: false,
                    };
                }
                self.walk_value(&c.value, ce);
            }
        }
        self.depth -= 1;
    }

    fn walk_selection(&mut self, parent: Option<&'a Definition>, sel: &'a Selection) {
        if self.depth > MAX_WALK_DEPTH {
            if self.depth == MAX_WALK_DEPTH + 1 {
                self.depth += 1;
                self.error(
                    Pos::default(),
                    format!("query nested deeper than {MAX_WALK_DEPTH} levels (a sluice limit)"),
                );
            }
            return;
        }
        self.depth += 1;
        match sel {
            Selection::Field(f) => {
                let declared: Option<&'a FieldDefinition> = if f.name == "__typename" {
                    None
                } else {
                    parent.and_then(|p| p.field(&f.name))
                };
                let def = if f.name == "__typename" {
                    Some(typename())
                } else {
                    declared
                };
                self.on_field(f, def, parent);
                let next = def.and_then(|d| self.ty(d.ty.name()));
                for arg in &f.arguments {
                    let ad = declared.and_then(|d| d.arguments.iter().find(|a| a.name == arg.name));
                    self.walk_argument(ad, arg);
                }
                for s in &f.selections {
                    self.walk_selection(next, s);
                }
                self.walk_directives(next, &f.directives, "FIELD");
            }
            Selection::Inline(i) => {
                self.on_inline_fragment(i, parent);
                let next = if i.type_condition.is_empty() {
                    parent
                } else {
                    self.ty(&i.type_condition)
                };
                self.walk_directives(next, &i.directives, "INLINE_FRAGMENT");
                for s in &i.selections {
                    self.walk_selection(next, s);
                }
            }
            Selection::Spread(s) => {
                let def = fragment(&self.frags, &s.name);
                self.on_fragment_spread(s, def, parent);
                let next = def.and_then(|d| self.ty(&d.type_condition));
                self.walk_directives(next, &s.directives, "FRAGMENT_SPREAD");
                if let Some(d) = def {
                    if self.validated_spreads.insert(d.name.clone()) {
                        for c in &d.selections {
                            self.walk_selection(next, c);
                        }
                    }
                }
            }
        }
        self.depth -= 1;
    }

    // ---- the rules, by event ----

    fn on_operation(&mut self, op: &'a OperationDefinition) {
        // KnownRootType
        if self.schema.root(&op.operation).is_none() {
            self.error(
                op.pos,
                format!(
                    "Schema does not support operation type \"{}\"",
                    op.operation
                ),
            );
        }
        // KnownTypeNames, VariablesAreInputTypes, UniqueVariableNames, NoUnusedVariables
        let mut seen: HashSet<&str> = HashSet::new();
        for vd in &op.variables {
            let name = vd.ty.name();
            match self.ty(name) {
                None => self.error(op.pos, format!("Unknown type \"{name}\".")),
                Some(t) if !t.is_input() => self.error(
                    vd.pos,
                    format!(
                        "Variable \"${}\" cannot be non-input type \"{}\".",
                        vd.variable,
                        vd.ty.text()
                    ),
                ),
                _ => {}
            }
            if !seen.insert(vd.variable.as_str()) {
                self.error(
                    vd.pos,
                    format!("There can be only one variable named \"${}\".", vd.variable),
                );
            }
            if !self.used_vars.contains(&vd.variable) {
                let message = if op.name.is_empty() {
                    format!("Variable \"${}\" is never used.", vd.variable)
                } else {
                    format!(
                        "Variable \"${}\" is never used in operation \"{}\".",
                        vd.variable, op.name
                    )
                };
                self.error(vd.pos, message);
            }
        }
        // LoneAnonymousOperation
        if op.name.is_empty() && self.doc.operations.len() > 1 {
            self.error(
                op.pos,
                "This anonymous operation must be the only defined operation.".to_string(),
            );
        }
        // UniqueOperationNames
        if !op.name.is_empty() {
            let first = self.doc.operations.iter().position(|o| o.name == op.name);
            let me = self.doc.operations.iter().position(|o| std::ptr::eq(o, op));
            if first != me {
                self.error(
                    op.pos,
                    format!("There can be only one operation named \"{}\".", op.name),
                );
            }
        }
        // SingleFieldSubscriptions
        if op.operation == "subscription" {
            let mut names: Vec<(&str, &str)> = Vec::new();
            let mut visited = HashSet::new();
            collect_top_fields(self, &op.selections, &mut names, &mut visited);
            let mut distinct: Vec<&str> = Vec::new();
            for (alias, _) in &names {
                if !distinct.contains(alias) {
                    distinct.push(alias);
                }
            }
            let who = if op.name.is_empty() {
                "Anonymous Subscription".to_string()
            } else {
                format!("Subscription \"{}\"", op.name)
            };
            if distinct.len() > 1 {
                self.error(
                    op.pos,
                    format!("{who} must select only one top level field."),
                );
            }
            for (_, name) in &names {
                if name.starts_with("__") {
                    self.error(
                        op.pos,
                        format!("{who} must not select an introspection top level field."),
                    );
                }
            }
        }
    }

    fn on_fragment(&mut self, f: &'a FragmentDefinition, def: Option<&Definition>) {
        self.in_fragment_definition = true;
        // FragmentsOnCompositeTypes
        if let Some(d) = def {
            if !f.type_condition.is_empty() && !d.is_composite() {
                self.error(
                    f.pos,
                    format!(
                        "Fragment \"{}\" cannot condition on non composite type \"{}\".",
                        f.name, f.type_condition
                    ),
                );
            }
        } else {
            // KnownTypeNames
            self.error(f.pos, format!("Unknown type \"{}\".", f.type_condition));
        }
        // NoUnusedFragments
        if !self.fragment_used.contains(&f.name) {
            self.error(f.pos, format!("Fragment \"{}\" is never used.", f.name));
        }
        // UniqueFragmentNames
        let first = self.doc.fragments.iter().position(|o| o.name == f.name);
        let me = self.doc.fragments.iter().position(|o| std::ptr::eq(o, f));
        if first != me {
            self.error(
                f.pos,
                format!("There can be only one fragment named \"{}\".", f.name),
            );
        }
    }

    fn on_inline_fragment(&mut self, i: &InlineFragment, parent: Option<&Definition>) {
        if i.type_condition.is_empty() {
            return;
        }
        match self.ty(&i.type_condition) {
            None => self.error(i.pos, format!("Unknown type \"{}\".", i.type_condition)),
            Some(t) if !t.is_composite() => self.error(
                i.pos,
                format!(
                    "Fragment cannot condition on non composite type \"{}\".",
                    i.type_condition
                ),
            ),
            Some(t) => {
                if let Some(p) = parent {
                    if !self.overlaps(p, t) {
                        self.error(
                            i.pos,
                            format!(
                                "Fragment cannot be spread here as objects of type \"{}\" can never be of type \"{}\".",
                                p.name, t.name
                            ),
                        );
                    }
                }
            }
        }
    }

    fn on_fragment_spread(
        &mut self,
        s: &FragmentSpread,
        def: Option<&FragmentDefinition>,
        parent: Option<&Definition>,
    ) {
        if !self.in_fragment_definition {
            self.fragment_used.insert(s.name.clone());
        }
        let Some(fd) = def else {
            self.error(s.pos, format!("Unknown fragment \"{}\".", s.name));
            return;
        };
        if let (Some(p), Some(t)) = (parent, self.ty(&fd.type_condition)) {
            if t.is_composite() && !self.overlaps(p, t) {
                self.error(
                    s.pos,
                    format!(
                        "Fragment \"{}\" cannot be spread here as objects of type \"{}\" can never be of type \"{}\".",
                        s.name, p.name, t.name
                    ),
                );
            }
        }
    }

    /// PossibleFragmentSpreads: whether some possible type of the parent is one of the
    /// fragment's.
    fn overlaps(&self, parent: &Definition, frag: &Definition) -> bool {
        let parents = self.schema.possible_types(parent);
        self.schema
            .possible_types(frag)
            .iter()
            .any(|f| parents.contains(f))
    }

    fn on_directive(&mut self, dir: &Directive, def: Option<&DirectiveDefinition>, loc: &str) {
        let Some(def) = def else {
            self.error(dir.pos, format!("Unknown directive \"@{}\".", dir.name));
            return;
        };
        if !def.locations.iter().any(|l| l == loc) {
            self.error(
                dir.pos,
                format!("Directive \"@{}\" may not be used on {loc}.", dir.name),
            );
        }
        for arg in &dir.arguments {
            if !def.arguments.iter().any(|a| a.name == arg.name) {
                let names: Vec<&str> = def.arguments.iter().map(|a| a.name.as_str()).collect();
                let message = format!(
                    "Unknown argument \"{}\" on directive \"@{}\".{}",
                    arg.name,
                    dir.name,
                    suggest(&arg.name, &names)
                );
                self.error(arg.pos, message);
            }
        }
        for ad in &def.arguments {
            if ad.ty.non_null
                && ad.default.is_none()
                && !dir.arguments.iter().any(|a| a.name == ad.name)
            {
                self.error(
                    dir.pos,
                    format!(
                        "Directive \"@{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                        dir.name,
                        ad.name,
                        ad.ty.text()
                    ),
                );
            }
        }
        self.unique_arguments(&dir.arguments);
    }

    fn unique_arguments(&mut self, args: &[Argument]) {
        let mut seen: HashSet<&str> = HashSet::new();
        for a in args {
            if !seen.insert(a.name.as_str()) {
                self.error(
                    a.pos,
                    format!("There can be only one argument named \"{}\".", a.name),
                );
            }
        }
    }

    fn on_field(
        &mut self,
        f: &'a Field,
        def: Option<&FieldDefinition>,
        parent: Option<&Definition>,
    ) {
        // FieldsOnCorrectType
        if let (Some(p), None) = (parent, def) {
            let mut message = format!("Cannot query field \"{}\" on type \"{}\".", f.name, p.name);
            let types = self.suggested_types(p, &f.name);
            if !types.is_empty() {
                let t: Vec<&str> = types.iter().map(|s| s.as_str()).collect();
                message += &format!(
                    " Did you mean to use an inline fragment on {}?",
                    quoted_or_list(&t)
                );
            } else if matches!(p.kind.as_str(), "OBJECT" | "INTERFACE") {
                let names: Vec<&str> = p.fields.iter().map(|x| x.name.as_str()).collect();
                message += &suggest(&f.name, &names);
            }
            self.error(f.pos, message);
        }
        self.unique_arguments(&f.arguments);
        let Some(def) = def else {
            return;
        };
        // KnownArgumentNames
        if let Some(p) = parent {
            for arg in &f.arguments {
                if !def.arguments.iter().any(|a| a.name == arg.name) {
                    let names: Vec<&str> = def.arguments.iter().map(|a| a.name.as_str()).collect();
                    let message = format!(
                        "Unknown argument \"{}\" on field \"{}.{}\".{}",
                        arg.name,
                        p.name,
                        f.name,
                        suggest(&arg.name, &names)
                    );
                    self.error(arg.pos, message);
                }
            }
        }
        // ProvidedRequiredArguments
        for ad in &def.arguments {
            if ad.ty.non_null
                && ad.default.is_none()
                && !f.arguments.iter().any(|a| a.name == ad.name)
            {
                self.error(
                    f.pos,
                    format!(
                        "Field \"{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                        f.name,
                        ad.name,
                        ad.ty.text()
                    ),
                );
            }
        }
        // ScalarLeafs
        if let Some(t) = self.ty(def.ty.name()) {
            if t.is_leaf() && !f.selections.is_empty() {
                self.error(
                    f.pos,
                    format!(
                        "Field \"{}\" must not have a selection since type \"{}\" has no subfields.",
                        f.name,
                        def.ty.name()
                    ),
                );
            }
            if !t.is_leaf() && f.selections.is_empty() {
                self.error(
                    f.pos,
                    format!(
                        "Field \"{}\" of type \"{}\" must have a selection of subfields.",
                        f.name,
                        def.ty.text()
                    ),
                );
            }
        }
        // MaxIntrospectionDepth
        if f.name == "__schema" || f.name == "__type" {
            let mut visited = HashSet::new();
            let mut memo = HashMap::new();
            if introspection_too_deep(&self.frags, &f.selections, 0, &mut visited, &mut memo) {
                self.error(f.pos, "Maximum introspection depth exceeded".to_string());
            }
        }
    }

    fn suggested_types(&self, parent: &Definition, field: &str) -> Vec<String> {
        if !parent.is_abstract() {
            return Vec::new();
        }
        let mut objects = Vec::new();
        let mut interfaces: Vec<String> = Vec::new();
        let mut usage: HashMap<String, usize> = HashMap::new();
        for pt in self.schema.possible_types(parent) {
            let Some(t) = self.ty(&pt) else { continue };
            if t.field(field).is_none() {
                continue;
            }
            objects.push(t.name.clone());
            for intf in &t.interfaces {
                if self.ty(intf).is_some_and(|i| i.field(field).is_some()) {
                    let n = usage.entry(intf.clone()).or_insert(0);
                    if *n == 0 {
                        interfaces.push(intf.clone());
                    }
                    *n += 1;
                }
            }
        }
        interfaces.sort_by(|a, b| usage.get(b).cmp(&usage.get(a)));
        interfaces.extend(objects);
        interfaces
    }

    fn on_value(&mut self, v: &Value, e: Expect<'_>, var_def: Option<&VariableDefinition>) {
        // NoUndefinedVariables
        if v.kind == kind::VARIABLE {
            if let Some(op) = self.op {
                if var_def.is_none() {
                    let message = if op.name.is_empty() {
                        format!("Variable \"${}\" is not defined.", v.raw)
                    } else {
                        format!(
                            "Variable \"${}\" is not defined by operation \"{}\".",
                            v.raw, op.name
                        )
                    };
                    self.error(v.pos, message);
                }
            }
        }
        // UniqueInputFieldNames
        if v.kind == kind::OBJECT {
            let mut seen: HashSet<&str> = HashSet::new();
            for c in &v.children {
                if !seen.insert(c.name.as_str()) {
                    self.error(
                        c.pos,
                        format!("There can be only one input field named \"{}\".", c.name),
                    );
                }
            }
        }
        // VariablesInAllowedPosition
        if v.kind == kind::VARIABLE {
            if let (Some(expected), Some(vd), Some(_)) = (e.ty, var_def, self.op) {
                let mut expected = expected.clone();
                let defaulted = vd.default.as_ref().is_some_and(|d| d.kind != kind::NULL);
                if (e.has_default || defaulted) && expected.non_null {
                    expected.non_null = false;
                }
                if !vd.ty.is_compatible(&expected) {
                    self.error(
                        v.pos,
                        format!(
                            "Variable \"${}\" of type \"{}\" used in position expecting type \"{}\".",
                            v.raw,
                            vd.ty.text(),
                            expected.text()
                        ),
                    );
                }
            }
        }
        self.values_of_correct_type(v, e);
    }

    fn values_of_correct_type(&mut self, v: &Value, e: Expect<'_>) {
        let (Some(def), Some(ty)) = (e.def, e.ty) else {
            return;
        };
        let shown = value_text(v);
        if v.kind == kind::NULL && ty.non_null {
            self.error(
                v.pos,
                format!("Expected value of type \"{}\", found {shown}.", ty.text()),
            );
        }
        if def.kind == "SCALAR"
            && !matches!(
                def.name.as_str(),
                "Int" | "Float" | "String" | "Boolean" | "ID"
            )
        {
            return;
        }
        let unexpected = |w: &mut Self| {
            w.error(
                v.pos,
                format!(
                    "{} cannot represent a non {} value: {shown}",
                    ty.text(),
                    def.name
                ),
            );
        };
        match v.kind {
            kind::NULL | kind::VARIABLE => {}
            kind::LIST => {
                if ty.elem.is_none() {
                    unexpected(self);
                }
            }
            kind::INT => {
                if !matches!(def.name.as_str(), "Int" | "Float" | "ID") {
                    unexpected(self);
                } else if v.raw.parse::<i64>().is_err() {
                    // gqlparser reads the literal as a Go int64 and checks no 32-bit range.
                    unexpected(self);
                }
            }
            kind::FLOAT => {
                if def.name != "Float" {
                    unexpected(self);
                }
            }
            kind::STRING | kind::BLOCK => {
                if def.kind == "ENUM" {
                    self.error(
                        v.pos,
                        format!(
                            "Enum \"{}\" cannot represent non-enum value: {shown}.",
                            def.name
                        ),
                    );
                } else if !matches!(def.name.as_str(), "String" | "ID") {
                    unexpected(self);
                }
            }
            kind::ENUM => {
                if def.kind != "ENUM" {
                    unexpected(self);
                } else if !def.enum_values.iter().any(|x| x.name == v.raw) {
                    self.error(
                        v.pos,
                        format!(
                            "Value \"{}\" does not exist in \"{}\" enum.",
                            v.raw, def.name
                        ),
                    );
                }
            }
            kind::BOOLEAN => {
                if def.name != "Boolean" {
                    unexpected(self);
                }
            }
            kind::OBJECT => {
                for f in &def.fields {
                    if f.ty.non_null
                        && f.default.is_none()
                        && !v.children.iter().any(|c| c.name == f.name)
                    {
                        self.error(
                            v.pos,
                            format!(
                                "Field \"{}.{}\" of required type \"{}\" was not provided.",
                                def.name,
                                f.name,
                                f.ty.text()
                            ),
                        );
                    }
                }
                for c in &v.children {
                    if def.field(&c.name).is_none() {
                        let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
                        let message = format!(
                            "Field \"{}\" is not defined by type \"{}\".{}",
                            c.name,
                            def.name,
                            suggest(&c.name, &names)
                        );
                        self.error(c.pos, message);
                    }
                }
                if def.kind == "INPUT_OBJECT" && def.directives.iter().any(|d| d.name == "oneOf") {
                    if v.children.len() != 1 {
                        self.error(
                            v.pos,
                            format!(
                                "OneOf Input Object \"{}\" must specify exactly one key.",
                                def.name
                            ),
                        );
                    } else if v.children.iter().any(|c| c.value.kind == kind::NULL) {
                        let name = v.children.first().map(|c| c.name.as_str()).unwrap_or("");
                        self.error(
                            v.pos,
                            format!("Field \"{}.{name}\" must be non-null.", def.name),
                        );
                    }
                }
            }
            _ => unexpected(self),
        }
    }
}

/// The top-level fields of a subscription, through fragments, as (response name, name).
fn collect_top_fields<'a>(
    w: &Walker<'a>,
    sels: &'a [Selection],
    out: &mut Vec<(&'a str, &'a str)>,
    visited: &mut HashSet<&'a str>,
) {
    for s in sels {
        match s {
            Selection::Field(f) => out.push((f.alias.as_str(), f.name.as_str())),
            Selection::Inline(i) => collect_top_fields(w, &i.selections, out, visited),
            Selection::Spread(sp) => {
                if visited.insert(sp.name.as_str()) {
                    if let Some(fd) = fragment(&w.frags, &sp.name) {
                        collect_top_fields(w, &fd.selections, out, visited);
                    }
                }
            }
        }
    }
}

fn introspection_too_deep<'a>(
    doc: &Frags<'a>,
    sels: &'a [Selection],
    depth: usize,
    visited: &mut HashSet<&'a str>,
    memo: &mut HashMap<(&'a str, usize), bool>,
) -> bool {
    for s in sels {
        match s {
            Selection::Field(f) => {
                let mut d = depth;
                if matches!(
                    f.name.as_str(),
                    "fields" | "interfaces" | "possibleTypes" | "inputFields"
                ) {
                    d += 1;
                    if d >= 3 {
                        return true;
                    }
                }
                if introspection_too_deep(doc, &f.selections, d, visited, memo) {
                    return true;
                }
            }
            Selection::Inline(i) => {
                if introspection_too_deep(doc, &i.selections, depth, visited, memo) {
                    return true;
                }
            }
            Selection::Spread(sp) => {
                let name = sp.name.as_str();
                if visited.contains(name) {
                    continue;
                }
                let Some(fd) = fragment(doc, name) else {
                    continue;
                };
                if let Some(&hit) = memo.get(&(name, depth)) {
                    if hit {
                        return true;
                    }
                    continue;
                }
                visited.insert(name);
                let hit = introspection_too_deep(doc, &fd.selections, depth, visited, memo);
                visited.remove(name);
                memo.insert((name, depth), hit);
                if hit {
                    return true;
                }
            }
        }
    }
    false
}

/// NoFragmentCycles, graphql-js's algorithm.
fn no_fragment_cycles(w: &mut Walker<'_>) {
    let doc = w.doc;
    let frags = w.frags.clone();
    let mut visited: HashSet<&str> = HashSet::new();
    let mut errors = Vec::new();
    for f in &doc.fragments {
        let mut path: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        detect_cycle(
            &frags,
            f,
            &mut visited,
            &mut path,
            &mut index,
            &mut errors,
            0,
        );
    }
    w.errors.extend(errors);
}

fn spreads<'a>(sels: &'a [Selection], out: &mut Vec<&'a FragmentSpread>) {
    for s in sels {
        match s {
            Selection::Field(f) => spreads(&f.selections, out),
            Selection::Inline(i) => spreads(&i.selections, out),
            Selection::Spread(sp) => out.push(sp),
        }
    }
}

fn detect_cycle<'a>(
    doc: &Frags<'a>,
    f: &'a FragmentDefinition,
    visited: &mut HashSet<&'a str>,
    path: &mut Vec<&'a str>,
    index: &mut HashMap<&'a str, usize>,
    errors: &mut Vec<GqlError>,
    depth: usize,
) {
    if !visited.insert(f.name.as_str()) {
        return;
    }
    if depth > MAX_WALK_DEPTH {
        errors.push(GqlError {
            message: format!(
                "fragments nested deeper than {MAX_WALK_DEPTH} levels (a sluice limit)"
            ),
            pos: None,
        });
        return;
    }
    let mut sp = Vec::new();
    spreads(&f.selections, &mut sp);
    if sp.is_empty() {
        return;
    }
    index.insert(f.name.as_str(), path.len());
    for s in sp {
        let cycle = index.get(s.name.as_str()).copied();
        path.push(s.name.as_str());
        match cycle {
            None => {
                if let Some(next) = fragment(doc, &s.name) {
                    detect_cycle(doc, next, visited, path, index, errors, depth + 1);
                }
            }
            Some(i) => {
                let via: Vec<String> = path[i..path.len() - 1]
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect();
                let message = if via.is_empty() {
                    format!("Cannot spread fragment \"{}\" within itself.", s.name)
                } else {
                    format!(
                        "Cannot spread fragment \"{}\" within itself via {}.",
                        s.name,
                        via.join(", ")
                    )
                };
                errors.push(GqlError {
                    message,
                    pos: Some(s.pos),
                });
            }
        }
        path.pop();
    }
    index.remove(f.name.as_str());
}

/// A field as OverlappingFieldsCanBeMerged sees it: its parent type and its definition.
struct Collected<'a> {
    parent: Option<&'a Definition>,
    field: &'a Field,
    def: Option<&'a FieldDefinition>,
}

struct Overlap<'a> {
    schema: &'a Schema,
    frags: Frags<'a>,
    pairs: usize,
    errors: Vec<GqlError>,
}

impl<'a> Overlap<'a> {
    /// Checks this selection set and every one nested in it (not through spreads: each
    /// fragment's own sets are checked from its definition).
    fn selection_sets(
        &mut self,
        sels: &'a [Selection],
        parent: Option<&'a Definition>,
        depth: usize,
    ) {
        if depth > MAX_WALK_DEPTH {
            return;
        }
        self.within(sels, parent);
        for s in sels {
            match s {
                Selection::Field(f) => {
                    let def = parent.and_then(|p| p.field(&f.name));
                    let next = def.and_then(|d| self.schema.types.get(d.ty.name()));
                    self.selection_sets(&f.selections, next, depth + 1);
                }
                Selection::Inline(i) => {
                    let next = if i.type_condition.is_empty() {
                        parent
                    } else {
                        self.schema.types.get(&i.type_condition)
                    };
                    self.selection_sets(&i.selections, next, depth + 1);
                }
                Selection::Spread(_) => {}
            }
        }
    }

    fn collect(
        &self,
        sels: &'a [Selection],
        parent: Option<&'a Definition>,
        out: &mut Vec<Collected<'a>>,
        visited: &mut HashSet<&'a str>,
    ) {
        for s in sels {
            match s {
                Selection::Field(f) => out.push(Collected {
                    parent,
                    field: f,
                    def: parent.and_then(|p| p.field(&f.name)),
                }),
                Selection::Inline(i) => {
                    let next = if i.type_condition.is_empty() {
                        parent
                    } else {
                        self.schema.types.get(&i.type_condition)
                    };
                    self.collect(&i.selections, next, out, visited);
                }
                Selection::Spread(sp) => {
                    if !visited.insert(sp.name.as_str()) {
                        continue;
                    }
                    if let Some(fd) = fragment(&self.frags, &sp.name) {
                        let next = self.schema.types.get(&fd.type_condition);
                        self.collect(&fd.selections, next, out, visited);
                    }
                }
            }
        }
    }

    fn within(&mut self, sels: &'a [Selection], parent: Option<&'a Definition>) {
        let mut fields = Vec::new();
        self.collect(sels, parent, &mut fields, &mut HashSet::new());
        for i in 0..fields.len() {
            for j in i + 1..fields.len() {
                if fields[i].field.alias == fields[j].field.alias {
                    self.conflict(&fields[i], &fields[j], false, 0);
                }
            }
        }
    }

    fn conflict(&mut self, a: &Collected<'a>, b: &Collected<'a>, exclusive: bool, depth: usize) {
        self.pairs += 1;
        if self.pairs > MAX_OVERLAP_PAIRS || depth > MAX_WALK_DEPTH {
            return;
        }
        let both_objects = matches!((a.parent, b.parent), (Some(p), Some(q)) if p.kind == "OBJECT" && q.kind == "OBJECT" && p.name != q.name);
        let exclusive = exclusive || both_objects;
        let alias = &a.field.alias;
        if !exclusive {
            if a.field.name != b.field.name {
                self.error(a, format!(
                    "Fields \"{alias}\" conflict because \"{}\" and \"{}\" are different fields. Use different aliases on the fields to fetch both if this was intentional.",
                    a.field.name, b.field.name
                ));
                return;
            }
            if !same_arguments(&a.field.arguments, &b.field.arguments) {
                self.error(a, format!(
                    "Fields \"{alias}\" conflict because they have differing arguments. Use different aliases on the fields to fetch both if this was intentional."
                ));
                return;
            }
        }
        if let (Some(da), Some(db)) = (a.def, b.def) {
            if self.types_conflict(&da.ty, &db.ty) {
                self.error(a, format!(
                    "Fields \"{alias}\" conflict because they return conflicting types \"{}\" and \"{}\". Use different aliases on the fields to fetch both if this was intentional.",
                    da.ty.text(), db.ty.text()
                ));
                return;
            }
        }
        if a.field.selections.is_empty() || b.field.selections.is_empty() {
            return;
        }
        let pa = a.def.and_then(|d| self.schema.types.get(d.ty.name()));
        let pb = b.def.and_then(|d| self.schema.types.get(d.ty.name()));
        let mut fa = Vec::new();
        let mut fb = Vec::new();
        self.collect(&a.field.selections, pa, &mut fa, &mut HashSet::new());
        self.collect(&b.field.selections, pb, &mut fb, &mut HashSet::new());
        for x in &fa {
            for y in &fb {
                if x.field.alias == y.field.alias {
                    self.conflict(x, y, exclusive, depth + 1);
                }
            }
        }
    }

    fn error(&mut self, a: &Collected<'a>, message: String) {
        self.errors.push(GqlError {
            message,
            pos: Some(a.field.pos),
        });
    }

    fn types_conflict(&self, a: &Type, b: &Type) -> bool {
        if a.non_null || b.non_null {
            if a.non_null != b.non_null {
                return true;
            }
            let (mut a2, mut b2) = (a.clone(), b.clone());
            a2.non_null = false;
            b2.non_null = false;
            return self.types_conflict(&a2, &b2);
        }
        match (&a.elem, &b.elem) {
            (Some(x), Some(y)) => return self.types_conflict(x, y),
            (Some(_), None) | (None, Some(_)) => return true,
            _ => {}
        }
        let leaf = |t: &Type| self.schema.types.get(t.name()).is_some_and(|d| d.is_leaf());
        if leaf(a) || leaf(b) {
            return a.named != b.named;
        }
        false
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    a.kind == b.kind
        && a.raw == b.raw
        && a.children.len() == b.children.len()
        && a.children
            .iter()
            .zip(&b.children)
            .all(|(x, y)| x.name == y.name && same_value(&x.value, &y.value))
}

fn same_arguments(a: &[Argument], b: &[Argument]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .find(|y| y.name == x.name)
                .is_some_and(|y| same_value(&x.value, &y.value))
        })
}

/// gqlparser's `Value.String()`.
fn value_text(v: &Value) -> String {
    match v.kind {
        kind::VARIABLE => format!("${}", v.raw),
        kind::STRING | kind::BLOCK => super::lexer::go_quote(&v.raw),
        kind::LIST => "list".to_string(),
        kind::OBJECT => "object".to_string(),
        _ => v.raw.clone(),
    }
}

/// `"a"`, `"a" or "b"`, `"a", "b", or "c"` (at most five).
fn quoted_or_list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().take(5).map(|s| format!("\"{s}\"")).collect();
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        2 => format!("{} or {}", items[0], items[1]),
        n => format!("{}, or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// " Did you mean …?" for the names close to `input` (graphql-js's suggestion list), or "".
fn suggest(input: &str, options: &[&str]) -> String {
    let threshold = input.len() * 2 / 5 + 1;
    let mut close: Vec<(usize, &str)> = options
        .iter()
        .filter_map(|o| {
            let d = if o.eq_ignore_ascii_case(input) {
                1
            } else {
                levenshtein(input, o)
            };
            (d <= threshold).then_some((d, *o))
        })
        .collect();
    close.sort();
    if close.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = close.iter().map(|(_, n)| *n).collect();
    format!(" Did you mean {}?", quoted_or_list(&names))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}
