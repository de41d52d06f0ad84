//! gqlparser's `ValidateSchemaDocument`: the prelude merged in, extensions applied, root types
//! found and every definition checked, the first problem being the error.

use std::collections::HashMap;

use super::GqlError;
use super::ast::*;

/// gqlparser's prelude: the built-in scalars, directives and introspection types.
const PRELUDE: &str = r#"
scalar Int
scalar Float
scalar String
scalar Boolean
scalar ID
directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @deprecated(reason: String = "No longer supported") on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE
directive @specifiedBy(url: String!) on SCALAR
directive @oneOf on INPUT_OBJECT
type __Schema {
  description: String
  types: [__Type!]!
  queryType: __Type!
  mutationType: __Type
  subscriptionType: __Type
  directives: [__Directive!]!
}
type __Type {
  kind: __TypeKind!
  name: String
  description: String
  fields(includeDeprecated: Boolean = false): [__Field!]
  interfaces: [__Type!]
  possibleTypes: [__Type!]
  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!]
  ofType: __Type
  specifiedByURL: String
  isOneOf: Boolean
}
type __Field {
  name: String!
  description: String
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type!
  isDeprecated: Boolean!
  deprecationReason: String
}
type __InputValue {
  name: String!
  description: String
  type: __Type!
  defaultValue: String
  isDeprecated: Boolean!
  deprecationReason: String
}
type __EnumValue {
  name: String!
  description: String
  isDeprecated: Boolean!
  deprecationReason: String
}
enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }
type __Directive {
  name: String!
  description: String
  locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  isRepeatable: Boolean!
}
enum __DirectiveLocation { QUERY MUTATION SUBSCRIPTION FIELD FRAGMENT_DEFINITION FRAGMENT_SPREAD INLINE_FRAGMENT VARIABLE_DEFINITION SCHEMA SCALAR OBJECT FIELD_DEFINITION ARGUMENT_DEFINITION INTERFACE UNION ENUM ENUM_VALUE INPUT_OBJECT INPUT_FIELD_DEFINITION }
"#;

fn prelude() -> &'static SchemaDocument {
    static DOC: std::sync::OnceLock<SchemaDocument> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = super::parser::parse_schema(PRELUDE).unwrap_or_default();
        for d in &mut doc.definitions {
            d.builtin = true;
        }
        doc
    })
}

/// A validated schema, as the query validator reads it.
#[derive(Default)]
pub struct Schema {
    pub types: HashMap<String, Definition>,
    pub directives: HashMap<String, DirectiveDefinition>,
    pub query: Option<String>,
    pub mutation: Option<String>,
    pub subscription: Option<String>,
    /// For an interface or object, the types that can stand for it, in gqlparser's order.
    pub possible: HashMap<String, Vec<String>>,
}

impl Schema {
    pub fn root(&self, operation: &str) -> Option<&Definition> {
        let name = match operation {
            "mutation" => self.mutation.as_ref(),
            "subscription" => self.subscription.as_ref(),
            _ => self.query.as_ref(),
        }?;
        self.types.get(name)
    }

    /// gqlparser's `GetPossibleTypes`: a union's members, otherwise the recorded types.
    pub fn possible_types(&self, def: &Definition) -> Vec<String> {
        if def.kind == "UNION" {
            return def.types.clone();
        }
        self.possible.get(&def.name).cloned().unwrap_or_default()
    }
}

fn err(pos: Pos, message: String) -> GqlError {
    GqlError {
        message,
        pos: Some(pos),
    }
}

/// OPA's `convertSchema`: the prelude merged before the document, then validated.
pub fn load(doc: &SchemaDocument) -> Result<Schema, GqlError> {
    let pre = prelude();
    let mut merged = pre.clone();
    merged.schema.extend(doc.schema.iter().cloned());
    merged
        .schema_extension
        .extend(doc.schema_extension.iter().cloned());
    merged.directives.extend(doc.directives.iter().cloned());
    merged.definitions.extend(doc.definitions.iter().cloned());
    merged.extensions.extend(doc.extensions.iter().cloned());
    validate_document(merged)
}

fn validate_document(doc: SchemaDocument) -> Result<Schema, GqlError> {
    let mut s = Schema::default();
    let mut order: Vec<String> = Vec::new();
    for def in doc.definitions {
        if s.types.contains_key(&def.name) {
            return Err(err(def.pos, format!("Cannot redeclare type {}.", def.name)));
        }
        order.push(def.name.clone());
        s.types.insert(def.name.clone(), def);
    }
    for ext in doc.extensions {
        let def = match s.types.get_mut(&ext.name) {
            Some(d) => d,
            None => {
                order.push(ext.name.clone());
                s.types.entry(ext.name.clone()).or_insert(Definition {
                    kind: ext.kind.clone(),
                    name: ext.name.clone(),
                    pos: ext.pos,
                    ..Default::default()
                })
            }
        };
        if def.kind != ext.kind {
            return Err(err(
                ext.pos,
                format!(
                    "Cannot extend type {} because the base type is a {}, not {}.",
                    ext.name, def.kind, ext.kind
                ),
            ));
        }
        def.directives.extend(ext.directives);
        def.interfaces.extend(ext.interfaces);
        def.fields.extend(ext.fields);
        def.types.extend(ext.types);
        def.enum_values.extend(ext.enum_values);
    }
    for name in &order {
        let Some(def) = s.types.get(name) else {
            continue;
        };
        match def.kind.as_str() {
            "UNION" => {
                let members = def.types.clone();
                s.possible.entry(name.clone()).or_default().extend(members);
            }
            "INPUT_OBJECT" | "OBJECT" | "INTERFACE" => {
                let interfaces = def.interfaces.clone();
                let is_interface = def.kind == "INTERFACE";
                for intf in interfaces {
                    s.possible.entry(intf).or_default().push(name.clone());
                }
                if !is_interface {
                    s.possible
                        .entry(name.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
            _ => {}
        }
    }
    for dir in doc.directives {
        if s.directives.contains_key(&dir.name) {
            // SDL may define the built-in directives again; the first one counts.
            if matches!(
                dir.name.as_str(),
                "include" | "skip" | "deprecated" | "specifiedBy" | "oneOf"
            ) {
                continue;
            }
            return Err(err(
                dir.pos,
                format!("Cannot redeclare directive {}.", dir.name),
            ));
        }
        s.directives.insert(dir.name.clone(), dir);
    }
    if doc.schema.len() > 1 {
        return Err(err(
            doc.schema[1].pos,
            "Cannot have multiple schema entry points, consider schema extensions instead."
                .to_string(),
        ));
    }
    for sd in doc.schema.iter().chain(doc.schema_extension.iter()) {
        for ep in &sd.operation_types {
            if !s.types.contains_key(&ep.ty) {
                return Err(err(
                    ep.pos,
                    format!(
                        "Schema root {} refers to a type {} that does not exist.",
                        ep.operation, ep.ty
                    ),
                ));
            }
            let slot = match ep.operation.as_str() {
                "query" => &mut s.query,
                "mutation" => &mut s.mutation,
                _ => &mut s.subscription,
            };
            *slot = Some(ep.ty.clone());
        }
    }
    let mut names: Vec<&String> = s.types.keys().collect();
    names.sort();
    for name in names {
        if let Some(def) = s.types.get(name) {
            validate_definition(&s, def)?;
        }
    }
    let mut dnames: Vec<&String> = s.directives.keys().collect();
    dnames.sort();
    for name in dnames {
        if let Some(d) = s.directives.get(name) {
            validate_name(d.pos, &d.name)?;
            validate_args(&s, &d.arguments, Some(&d.name))?;
        }
    }
    for sd in doc.schema.iter().chain(doc.schema_extension.iter()) {
        validate_directives(&s, &sd.directives, "SCHEMA", None)?;
    }
    if doc.schema.is_empty() {
        for (slot, name) in [
            (&mut s.query, "Query"),
            (&mut s.mutation, "Mutation"),
            (&mut s.subscription, "Subscription"),
        ] {
            if slot.is_none() && s.types.contains_key(name) {
                *slot = Some(name.to_string());
            }
        }
    }
    if let Some(q) = s.query.clone() {
        if let Some(def) = s.types.get_mut(&q) {
            def.fields.push(FieldDefinition {
                name: "__schema".to_string(),
                ty: Type::named("__Schema", true),
                ..Default::default()
            });
            def.fields.push(FieldDefinition {
                name: "__type".to_string(),
                ty: Type::named("__Type", false),
                arguments: vec![ArgumentDefinition {
                    name: "name".to_string(),
                    ty: Type::named("String", true),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
    Ok(s)
}

fn validate_name(pos: Pos, name: &str) -> Result<(), GqlError> {
    if name.starts_with("__") {
        return Err(err(
            pos,
            format!(
                "Name \"{name}\" must not begin with \"__\", which is reserved by GraphQL introspection."
            ),
        ));
    }
    Ok(())
}

fn validate_type_ref(s: &Schema, t: &Type) -> Result<(), GqlError> {
    if !s.types.contains_key(t.name()) {
        return Err(err(t.pos, format!("Undefined type {}.", t.name())));
    }
    Ok(())
}

fn validate_args(
    s: &Schema,
    args: &[ArgumentDefinition],
    current: Option<&str>,
) -> Result<(), GqlError> {
    for arg in args {
        validate_name(arg.pos, &arg.name)?;
        validate_type_ref(s, &arg.ty)?;
        if let Some(def) = s.types.get(arg.ty.name()) {
            if !def.is_input() {
                return Err(err(
                    arg.pos,
                    format!(
                        "cannot use {} as argument {} because {} is not a valid input type",
                        arg.ty.text(),
                        arg.name,
                        def.kind
                    ),
                ));
            }
        }
        validate_directives(s, &arg.directives, "ARGUMENT_DEFINITION", current)?;
    }
    Ok(())
}

fn validate_directives(
    s: &Schema,
    dirs: &[Directive],
    location: &str,
    current: Option<&str>,
) -> Result<(), GqlError> {
    for dir in dirs {
        validate_name(dir.pos, &dir.name)?;
        if current == Some(dir.name.as_str()) {
            return Err(err(
                dir.pos,
                format!("Directive {} cannot refer to itself.", dir.name),
            ));
        }
        let Some(def) = s.directives.get(&dir.name) else {
            return Err(err(dir.pos, format!("Undefined directive {}.", dir.name)));
        };
        if !def.locations.iter().any(|l| l == location) {
            return Err(err(
                dir.pos,
                format!("Directive {} is not applicable on {}.", dir.name, location),
            ));
        }
        for arg in &def.arguments {
            if arg.ty.non_null
                && arg.default.is_none()
                && !dir.arguments.iter().any(|a| a.name == arg.name)
            {
                return Err(err(
                    dir.pos,
                    format!(
                        "Argument {} for directive {} cannot be null.",
                        arg.name, dir.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn kind_list(kinds: &[&str]) -> String {
    kinds.join(", ")
}

fn validate_definition(s: &Schema, def: &Definition) -> Result<(), GqlError> {
    let field_location = if def.kind == "INPUT_OBJECT" {
        "INPUT_FIELD_DEFINITION"
    } else {
        "FIELD_DEFINITION"
    };
    for f in &def.fields {
        validate_name(f.pos, &f.name)?;
        validate_type_ref(s, &f.ty)?;
        validate_args(s, &f.arguments, None)?;
        validate_directives(s, &f.directives, field_location, None)?;
    }
    for (i, t) in def.types.iter().enumerate() {
        let Some(td) = s.types.get(t) else {
            return Err(err(def.pos, format!("Undefined type \"{t}\".")));
        };
        if td.kind != "OBJECT" {
            return Err(err(
                def.pos,
                format!("{} type \"{t}\" must be OBJECT.", def.kind),
            ));
        }
        if def.types[..i].contains(t) {
            return Err(err(
                def.pos,
                format!("Union type {} can only include type {t} once.", def.name),
            ));
        }
    }
    for intf in &def.interfaces {
        validate_implements(s, def, intf)?;
    }
    match def.kind.as_str() {
        "OBJECT" | "INTERFACE" => {
            if def.fields.is_empty() {
                return Err(err(
                    def.pos,
                    format!("{} {}: must define one or more fields.", def.kind, def.name),
                ));
            }
            for f in &def.fields {
                if let Some(t) = s.types.get(f.ty.name()) {
                    if t.kind == "INPUT_OBJECT" {
                        return Err(err(
                            f.pos,
                            format!(
                                "{} {}: field must be one of {}.",
                                def.kind,
                                def.name,
                                kind_list(&["SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM"])
                            ),
                        ));
                    }
                }
            }
        }
        "ENUM" => {
            if def.enum_values.is_empty() {
                return Err(err(
                    def.pos,
                    format!(
                        "{} {}: must define one or more unique enum values.",
                        def.kind, def.name
                    ),
                ));
            }
            for (i, v) in def.enum_values.iter().enumerate() {
                if matches!(v.name.as_str(), "true" | "false" | "null") {
                    return Err(err(
                        def.pos,
                        format!("{} {}: non-enum value {}.", def.kind, def.name, v.name),
                    ));
                }
                if def.enum_values[..i].iter().any(|w| w.name == v.name) {
                    return Err(err(
                        v.pos,
                        format!(
                            "Enum value {}.{} can only be defined once.",
                            def.name, v.name
                        ),
                    ));
                }
                validate_directives(s, &v.directives, "ENUM_VALUE", None)?;
            }
        }
        "INPUT_OBJECT" => {
            if def.fields.is_empty() {
                return Err(err(
                    def.pos,
                    format!(
                        "{} {}: must define one or more input fields.",
                        def.kind, def.name
                    ),
                ));
            }
            for f in &def.fields {
                if let Some(t) = s.types.get(f.ty.name()) {
                    if !matches!(t.kind.as_str(), "SCALAR" | "ENUM" | "INPUT_OBJECT") {
                        return Err(err(
                            f.pos,
                            format!(
                                "{} {}: field must be one of {}.",
                                t.kind,
                                f.name,
                                kind_list(&["SCALAR", "ENUM", "INPUT_OBJECT"])
                            ),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    for (i, f1) in def.fields.iter().enumerate() {
        if let Some(f2) = def.fields[i + 1..].iter().find(|f2| f2.name == f1.name) {
            return Err(err(
                f2.pos,
                format!("Field {}.{} can only be defined once.", def.name, f2.name),
            ));
        }
    }
    if !def.builtin {
        validate_name(def.pos, &def.name)?;
    }
    validate_directives(s, &def.directives, &def.kind, None)
}

fn validate_implements(s: &Schema, def: &Definition, intf_name: &str) -> Result<(), GqlError> {
    let Some(intf) = s.types.get(intf_name) else {
        return Err(err(def.pos, format!("Undefined type \"{intf_name}\".")));
    };
    if intf.kind != "INTERFACE" {
        return Err(err(
            def.pos,
            format!("\"{intf_name}\" is a non interface type {}.", intf.kind),
        ));
    }
    for required in &intf.fields {
        let Some(found) = def.field(&required.name) else {
            return Err(err(
                def.pos,
                format!(
                    "For {} to implement {} it must have a field called {}.",
                    def.name, intf.name, required.name
                ),
            ));
        };
        if !is_covariant(s, &required.ty, &found.ty) {
            return Err(err(
                found.pos,
                format!(
                    "For {} to implement {} the field {} must have type {}.",
                    def.name,
                    intf.name,
                    required.name,
                    required.ty.text()
                ),
            ));
        }
        for ra in &required.arguments {
            let Some(fa) = found.arguments.iter().find(|a| a.name == ra.name) else {
                return Err(err(
                    found.pos,
                    format!(
                        "For {} to implement {} the field {} must have the same arguments but it is missing {}.",
                        def.name, intf.name, required.name, ra.name
                    ),
                ));
            };
            if !ra.ty.is_compatible(&fa.ty) {
                return Err(err(
                    fa.pos,
                    format!(
                        "For {} to implement {} the field {} must have the same arguments but {} has the wrong type.",
                        def.name, intf.name, required.name, ra.name
                    ),
                ));
            }
        }
        for fa in &found.arguments {
            if !required.arguments.iter().any(|a| a.name == fa.name)
                && fa.ty.non_null
                && fa.default.is_none()
            {
                return Err(err(
                    fa.pos,
                    format!(
                        "For {} to implement {} any additional arguments on {} must be optional or have a default value but {} is required.",
                        def.name, intf.name, found.name, fa.name
                    ),
                ));
            }
        }
    }
    // Every interface the implemented interface implements must be implemented too.
    for transitive in &intf.interfaces {
        if !def.interfaces.contains(transitive) {
            if *transitive == def.name {
                return Err(err(
                    def.pos,
                    format!(
                        "Type {} cannot implement {intf_name} because it would create a circular reference.",
                        def.name
                    ),
                ));
            }
            return Err(err(
                def.pos,
                format!(
                    "Type {} must implement {transitive} because it is implemented by {intf_name}.",
                    def.name
                ),
            ));
        }
    }
    Ok(())
}

fn is_covariant(s: &Schema, required: &Type, actual: &Type) -> bool {
    if required.non_null && !actual.non_null {
        return false;
    }
    if !required.named.is_empty() {
        if required.named == actual.named {
            return true;
        }
        return s
            .possible
            .get(&required.named)
            .is_some_and(|p| p.contains(&actual.named));
    }
    match (&required.elem, &actual.elem) {
        (Some(r), Some(a)) => is_covariant(s, r, a),
        _ => false,
    }
}
