//! Referential data: Kubernetes objects that templates may look up as `data.inventory`, in
//! Gatekeeper's layout — `data.inventory.namespace[ns][groupVersion][kind][name]` for namespaced
//! objects, `data.inventory.cluster[groupVersion][kind][name]` for cluster-scoped ones — and the
//! Namespace objects that `namespaceSelector` needs.
//!
//! Gatekeeper syncs these from the cluster; sluice reads them from files (`webhook.inventory`,
//! a suite case's `inventory`). Not here: evaluation (review.rs).

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::error::AdmissionError;
use super::manifests::{self, Document};

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// `{"namespace": {...}, "cluster": {...}}`.
    tree: Json,
    objects: usize,
}

impl Inventory {
    pub fn new() -> Self {
        Self {
            tree: serde_json::json!({"namespace": {}, "cluster": {}}),
            objects: 0,
        }
    }

    /// Reads every manifest under `path`; every document must be a Kubernetes object.
    pub fn load(path: &Path) -> Result<Self, AdmissionError> {
        let mut inv = Self::new();
        for file in manifests::files_under(path)? {
            for doc in manifests::read_file(&file)? {
                inv.add(&doc)?;
            }
        }
        Ok(inv)
    }

    /// Adds one object (a `List` adds its items).
    pub fn add(&mut self, doc: &Document) -> Result<(), AdmissionError> {
        if doc.kind() == "List" || doc.kind().ends_with("List") && doc.body.get("items").is_some() {
            let items = doc
                .body
                .get("items")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                self.add(&Document {
                    origin: format!("{}: items[{i}]", doc.origin),
                    body: item,
                })?;
            }
            return Ok(());
        }
        let (gv, kind, name) = (doc.api_version(), doc.kind(), doc.name());
        if gv.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(AdmissionError::Inventory(format!(
                "{}: an inventory object needs apiVersion, kind and metadata.name",
                doc.origin
            )));
        }
        let ns = doc
            .body
            .pointer("/metadata/namespace")
            .and_then(Json::as_str)
            .unwrap_or("");
        let mut path: Vec<&str> = if ns.is_empty() {
            vec!["cluster"]
        } else {
            vec!["namespace", ns]
        };
        path.extend([gv, kind]);
        let mut node = &mut self.tree;
        for key in path {
            let Json::Object(map) = node else {
                return Err(AdmissionError::Inventory(format!(
                    "{}: inventory layout conflict",
                    doc.origin
                )));
            };
            node = map
                .entry(key.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
        }
        if let Json::Object(map) = node {
            map.insert(name.to_string(), doc.body.clone());
            self.objects += 1;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.objects
    }

    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    /// The labels of Namespace `name`: `None` when the Namespace is not in the inventory,
    /// `Some(None)` when it has no labels.
    pub fn namespace_labels(&self, name: &str) -> Option<Option<&Json>> {
        self.tree
            .get("cluster")
            .and_then(|c| c.get("v1"))
            .and_then(|v| v.get("Namespace"))
            .and_then(|n| n.get(name))
            .map(|ns| ns.pointer("/metadata/labels"))
    }

    /// `{"inventory": {...}}`, to add as engine data.
    pub fn to_data(&self) -> regorus::Value {
        regorus::Value::from(serde_json::json!({ "inventory": self.tree }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_land_in_gatekeepers_layout() {
        let docs = manifests::parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: line-1, labels: {plant: \"yes\"}}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: line-1}\n",
            "inv.yaml",
        )
        .unwrap_or_default();
        let mut inv = Inventory::new();
        for d in &docs {
            assert_eq!(inv.add(d), Ok(()));
        }
        let data = serde_json::to_value(inv.to_data()).unwrap_or_default();
        assert_eq!(
            data.pointer(
                "/inventory/namespace/line-1/networking.k8s.io~1v1/Ingress/web/metadata/name"
            ),
            Some(&Json::from("web"))
        );
        assert_eq!(
            data.pointer("/inventory/cluster/v1/Namespace/line-1/metadata/name"),
            Some(&Json::from("line-1"))
        );
        assert_eq!(
            inv.namespace_labels("line-1")
                .flatten()
                .and_then(|l| l.get("plant")),
            Some(&Json::from("yes"))
        );
        assert!(inv.namespace_labels("other").is_none());
        assert_eq!(inv.len(), 2);
    }
}
