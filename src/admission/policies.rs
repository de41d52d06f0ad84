//! The loaded Gatekeeper policy set: compiled templates, their constraints (ordered by kind then
//! name, as Gatekeeper orders results) and the inventory, plus every problem met while loading.
//!
//! Loading never stops at a bad document: a template that does not compile, a CEL-only template,
//! a constraint whose kind has no template, or an unreadable file is reported in
//! [`Policies::problems`] and skipped, and everything else keeps enforcing.
//!
//! Not here: evaluation (review.rs).

use std::path::Path;
use std::sync::Mutex;

use regorus::Engine;

use super::constraints::{self, Constraint};
use super::inventory::Inventory;
use super::manifests::{self, Document};
use super::templates::{self, Template};

/// The shipped policies/gatekeeper templates and constraints, embedded so the default works
/// anywhere. Suites and sample objects are left out: they are for `sluice verify`.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "policies/gatekeeper/sidecar/template.yaml",
        include_str!("../../policies/gatekeeper/sidecar/template.yaml"),
    ),
    (
        "policies/gatekeeper/sidecar/constraint.yaml",
        include_str!("../../policies/gatekeeper/sidecar/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/edge-nodes/template.yaml",
        include_str!("../../policies/gatekeeper/edge-nodes/template.yaml"),
    ),
    (
        "policies/gatekeeper/edge-nodes/constraint.yaml",
        include_str!("../../policies/gatekeeper/edge-nodes/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/host-networking/template.yaml",
        include_str!("../../policies/gatekeeper/host-networking/template.yaml"),
    ),
    (
        "policies/gatekeeper/host-networking/constraint.yaml",
        include_str!("../../policies/gatekeeper/host-networking/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/external-name/template.yaml",
        include_str!("../../policies/gatekeeper/external-name/template.yaml"),
    ),
    (
        "policies/gatekeeper/external-name/constraint.yaml",
        include_str!("../../policies/gatekeeper/external-name/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/egress-proxy/template.yaml",
        include_str!("../../policies/gatekeeper/egress-proxy/template.yaml"),
    ),
    (
        "policies/gatekeeper/egress-proxy/constraint.yaml",
        include_str!("../../policies/gatekeeper/egress-proxy/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/net-admin/template.yaml",
        include_str!("../../policies/gatekeeper/net-admin/template.yaml"),
    ),
    (
        "policies/gatekeeper/net-admin/constraint.yaml",
        include_str!("../../policies/gatekeeper/net-admin/constraint.yaml"),
    ),
    (
        "policies/gatekeeper/intercept-bypass/template.yaml",
        include_str!("../../policies/gatekeeper/intercept-bypass/template.yaml"),
    ),
    (
        "policies/gatekeeper/intercept-bypass/constraint.yaml",
        include_str!("../../policies/gatekeeper/intercept-bypass/constraint.yaml"),
    ),
];

/// A template ready to evaluate: the compiled engine with the inventory added, and a pool of
/// clones (regorus evaluates through `&mut`, so each concurrent review takes its own clone).
pub struct LoadedTemplate {
    pub template: Template,
    engine: Engine,
    pool: Mutex<Vec<Engine>>,
}

/// Clones kept for reuse per template; more concurrent reviews than this clone afresh.
const POOL_MAX: usize = 64;

impl LoadedTemplate {
    fn new(template: Template, inventory: &Inventory) -> Result<Self, String> {
        let mut engine = template.engine.clone();
        engine
            .add_data(inventory.to_data())
            .map_err(|e| format!("{}: adding inventory: {e}", template.origin))?;
        // Adding data unprepares the engine; prepare it again so that no review pays for it.
        engine
            .eval_query("true".to_string(), false)
            .map_err(|e| format!("{}: {e}", template.origin))?;
        Ok(Self {
            template,
            engine,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on an engine of this template, taken from the pool.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let taken = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut engine = taken.unwrap_or_else(|| self.engine.clone());
        let out = f(&mut engine);
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(engine);
        }
        out
    }

    /// A fresh clone of the engine (benchmarks measure raw evaluation with it).
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }
}

/// A problem met while loading; the thing it names was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A file that cannot be read or parsed.
    File(String),
    /// A template that cannot be enforced (malformed, does not compile, CEL only).
    Template(String),
    /// A constraint that cannot be used (bad fields, unknown kind, broken template).
    Constraint(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(m) | Self::Template(m) | Self::Constraint(m) => f.write_str(m),
        }
    }
}

pub struct Policies {
    pub templates: Vec<LoadedTemplate>,
    /// Constraints with the index of their template, sorted by kind then name.
    pub constraints: Vec<(Constraint, usize)>,
    pub inventory: Inventory,
    pub problems: Vec<Problem>,
}

impl Policies {
    /// Reads templates and constraints from files and directories; other documents (sample
    /// objects, suites) are ignored.
    pub fn load<P: AsRef<Path>>(paths: &[P], inventory: Inventory) -> Self {
        let mut docs = Vec::new();
        let mut problems = Vec::new();
        for p in paths {
            match manifests::files_under(p.as_ref()) {
                Err(e) => problems.push(Problem::File(e.to_string())),
                Ok(files) => {
                    for f in files {
                        match manifests::read_file(&f) {
                            Ok(d) => docs.extend(d),
                            Err(e) => problems.push(Problem::File(e.to_string())),
                        }
                    }
                }
            }
        }
        let mut set = Self::from_documents(&docs, inventory);
        problems.append(&mut set.problems);
        set.problems = problems;
        set
    }

    /// The shipped policies/gatekeeper set.
    pub fn embedded(inventory: Inventory) -> Self {
        let mut docs = Vec::new();
        let mut problems = Vec::new();
        for (path, text) in EMBEDDED {
            match manifests::parse(text, path) {
                Ok(d) => docs.extend(d),
                Err(e) => problems.push(Problem::File(e.to_string())),
            }
        }
        let mut set = Self::from_documents(&docs, inventory);
        problems.append(&mut set.problems);
        set.problems = problems;
        set
    }

    /// Compiles the templates among `docs` and attaches the constraints.
    pub fn from_documents(docs: &[Document], inventory: Inventory) -> Self {
        let mut problems = Vec::new();
        let mut compiled = Vec::new();
        for doc in docs.iter().filter(|d| templates::is_template(d)) {
            match templates::compile(doc) {
                Ok(t) => compiled.push(t),
                Err(e) => problems.push(e),
            }
        }
        let constraint_docs: Vec<&Document> = docs
            .iter()
            .filter(|d| constraints::is_constraint(d))
            .collect();
        Self::assemble(compiled, problems, &constraint_docs, inventory)
    }

    /// Builds a set from compiled templates (and the templates that failed, so that their
    /// constraints are reported as such), constraint documents and the inventory.
    pub fn assemble(
        compiled: Vec<Template>,
        failed: Vec<templates::TemplateError>,
        constraint_docs: &[&Document],
        inventory: Inventory,
    ) -> Self {
        let mut problems = Vec::new();
        let mut templates: Vec<LoadedTemplate> = Vec::new();
        // Kinds whose template exists but failed: their constraints are reported as such.
        let mut broken_kinds: Vec<String> = Vec::new();
        for e in failed {
            if let Some(k) = e.template() {
                broken_kinds.push(k.to_string());
            }
            problems.push(Problem::Template(e.to_string()));
        }
        for t in compiled {
            if let Some(first) = templates.iter().find(|x| x.template.kind == t.kind) {
                problems.push(Problem::Template(format!(
                    "{}: template {} is already defined by {}; this one is skipped",
                    t.origin, t.kind, first.template.origin
                )));
                continue;
            }
            match LoadedTemplate::new(t, &inventory) {
                Ok(l) => templates.push(l),
                Err(e) => problems.push(Problem::Template(e)),
            }
        }
        let mut constraints: Vec<(Constraint, usize)> = Vec::new();
        for doc in constraint_docs {
            let c = match constraints::parse(doc) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(Problem::Constraint(e.to_string()));
                    continue;
                }
            };
            let Some(idx) = templates.iter().position(|t| t.template.kind == c.kind) else {
                let why = if broken_kinds.contains(&c.kind) {
                    format!("the template of kind {} failed to load", c.kind)
                } else {
                    format!("no ConstraintTemplate defines kind {}", c.kind)
                };
                problems.push(Problem::Constraint(format!(
                    "{}: constraint {}/{}: {why}; the constraint is skipped",
                    c.origin, c.kind, c.name
                )));
                continue;
            };
            let c = match super::schema::checked_parameters(c, &templates[idx].template) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(Problem::Constraint(e.to_string()));
                    continue;
                }
            };
            if constraints
                .iter()
                .any(|(x, _)| x.kind == c.kind && x.name == c.name)
            {
                problems.push(Problem::Constraint(format!(
                    "{}: constraint {}/{} is defined twice; this one is skipped",
                    c.origin, c.kind, c.name
                )));
                continue;
            }
            constraints.push((c, idx));
        }
        constraints.sort_by(|(a, _), (b, _)| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Self {
            templates,
            constraints,
            inventory,
            problems,
        }
    }

    /// Limits each evaluation of a template; past it the evaluation fails (a violation).
    pub fn set_eval_timeout(&mut self, limit: std::time::Duration) {
        for t in &mut self.templates {
            t.engine
                .set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
                    limit,
                    check_interval: std::num::NonZeroU32::new(64)
                        .unwrap_or(std::num::NonZeroU32::MIN),
                });
            t.pool.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Problems that concern templates (the `template load errors` metric).
    pub fn template_errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| matches!(p, Problem::Template(_)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_policies_load_without_problems() {
        let p = Policies::embedded(Inventory::new());
        assert_eq!(p.problems, Vec::<Problem>::new());
        assert_eq!(p.templates.len(), 7);
        assert_eq!(p.constraints.len(), 7);
    }

    #[test]
    fn embedded_list_is_every_template_and_constraint_on_disk() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/gatekeeper");
        let on_disk = Policies::load(&[dir], Inventory::new());
        assert_eq!(on_disk.problems, Vec::<Problem>::new());
        let names = |p: &Policies| {
            p.constraints
                .iter()
                .map(|(c, _)| format!("{}/{}", c.kind, c.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&on_disk),
            names(&Policies::embedded(Inventory::new()))
        );
    }
}
