//! [`EsIndex`]: a read model is an alias `{name}` over one versioned index `{name}_v{n}` with
//! explicit mappings. Creating, inspecting and swapping them.

use std::fmt;

use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesGetAliasParts, IndicesGetMappingParts,
    IndicesGetSettingsParts, IndicesPutMappingParts, IndicesPutSettingsParts, IndicesRefreshParts,
};
use elasticsearch::Elasticsearch;
use serde_json::{json, Map, Value};

use crate::client::RedactedClient;
use crate::document::{meta_mapping, META_FIELD};
use crate::{http, ElasticProjection, EsError, IndexSettings, Result};

/// One versioned index of a read model.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexVersion {
    /// The index's name, `{name}_v{version}`.
    pub index: String,
    /// Its version number.
    pub version: u32,
}

/// The indices and alias of one read model.
///
/// Each read model is an alias `{name}` over a versioned index `{name}_v{n}` whose mappings are
/// explicit: the projection's properties plus the framework's `cqrs` metadata object, with
/// `dynamic: strict` by default so that a document with an unmapped field is refused (and
/// reported as poison) instead of silently widening the mapping. Queries and the live projector
/// use the alias; a rebuild ([`EsIndex::rebuild`]) fills `{name}_v{n+1}` and swaps the alias.
///
/// Its `Debug` output leaves the client out: the client's own prints its credentials.
#[derive(Clone)]
pub struct EsIndex {
    pub(crate) client: Elasticsearch,
    name: String,
    properties: Map<String, Value>,
    settings: IndexSettings,
}

impl fmt::Debug for EsIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsIndex")
            .field("client", &RedactedClient)
            .field("name", &self.name)
            .field("properties", &self.properties)
            .field("settings", &self.settings)
            .finish()
    }
}

impl EsIndex {
    /// The read model `name` with the document mappings `properties` (the `properties` object).
    /// Fails when the name cannot be an alias or the properties are not an object of field
    /// definitions, or use the reserved `cqrs` field.
    pub fn new(client: Elasticsearch, name: impl Into<String>, properties: Value) -> Result<Self> {
        let name = name.into();
        validate_name(&name)?;
        let Value::Object(properties) = properties else {
            return Err(EsError::InvalidMappings(
                "the properties must be a JSON object".to_owned(),
            ));
        };
        if properties.contains_key(META_FIELD) {
            return Err(EsError::InvalidMappings(format!(
                "the field `{META_FIELD}` is reserved for the framework's metadata"
            )));
        }
        Ok(Self {
            client,
            name,
            properties,
            settings: IndexSettings::default(),
        })
    }

    /// The read model of `projection`: its name and mappings.
    pub fn for_projection<P: ElasticProjection>(
        client: Elasticsearch,
        projection: &P,
    ) -> Result<Self> {
        Self::new(client, projection.name(), projection.mappings())
    }

    /// Creates its new versioned indices with `settings` (default: one shard, no replicas,
    /// strict, the server's refresh interval).
    #[must_use]
    pub fn with_settings(mut self, settings: IndexSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The read model's name: the alias.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of version `version`: `{name}_v{version}`.
    pub fn version_name(&self, version: u32) -> String {
        format!("{}_v{version}", self.name)
    }

    /// The body that creates a versioned index: settings and mappings.
    pub fn index_body(&self, refresh_interval: Option<&str>) -> Value {
        let mut properties = self.properties.clone();
        properties.insert(META_FIELD.to_owned(), meta_mapping());
        let mut settings = json!({
            "number_of_shards": self.settings.shards,
            "number_of_replicas": self.settings.replicas,
        });
        if let Some(interval) = refresh_interval.or(self.settings.refresh_interval.as_deref()) {
            settings["refresh_interval"] = json!(interval);
        }
        json!({
            "settings": settings,
            "mappings": {
                "dynamic": if self.settings.strict { "strict" } else { "false" },
                "properties": properties,
            },
        })
    }

    /// The index the alias points to now, or `None` when there is no alias.
    pub async fn current(&self) -> Result<Option<IndexVersion>> {
        let response = self
            .client
            .indices()
            .get_alias(IndicesGetAliasParts::Name(&[&self.name]))
            .send()
            .await?;
        let (status, body) = http::json_any(response).await?;
        match status {
            200 => {}
            404 => return Ok(None),
            _ => {
                return Err(EsError::Status {
                    operation: "get alias",
                    status,
                    reason: http::reason(&body),
                })
            }
        }
        let indices: Vec<&String> = body
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        match indices.as_slice() {
            [] => Ok(None),
            [index] => self
                .parse_version(index)
                .map(|version| {
                    Some(IndexVersion {
                        index: (*index).clone(),
                        version,
                    })
                })
                .ok_or_else(|| self.layout(format!("the alias points to {index}"))),
            many => Err(self.layout(format!("the alias points to {} indices", many.len()))),
        }
    }

    /// Creates version 1 and the alias unless the alias exists; returns the current index.
    /// Idempotent, and safe when several processes call it at once.
    ///
    /// When the alias exists, the fields of the read model's mappings that the index it points
    /// to lacks (a release that shows more) are mapped in place, so documents carrying them
    /// are written; a search on such a field does not find the documents written before
    /// until a rebuild fills them. Replicas still on the release before ignore the field. A
    /// field whose type changed cannot change in place: [`EsError::MappingsConflict`], which
    /// says to rebuild (a field dropped from the mappings stays mapped, unused). Only a
    /// missing field needs the right to change mappings; reading them is enough otherwise.
    pub async fn ensure(&self) -> Result<IndexVersion> {
        if let Some(current) = self.current().await? {
            self.map_in_place(&current.index).await?;
            return Ok(current);
        }
        let index = self.version_name(1);
        let mut body = self.index_body(None);
        body["aliases"] = json!({ &self.name: {} });
        self.create(&index, body).await?;
        // Created (with its alias, atomically), or someone else created it just now.
        self.current()
            .await?
            .ok_or_else(|| self.layout(format!("{index} exists without the alias")))
    }

    /// Maps on `index` the fields of the read model's mappings it lacks. It reads the index's
    /// mappings first (read rights are enough when nothing is missing) and writes only what
    /// is missing; a field whose type differs is [`EsError::MappingsConflict`], before
    /// anything is written.
    async fn map_in_place(&self, index: &str) -> Result<()> {
        let response = self
            .client
            .indices()
            .get_mapping(IndicesGetMappingParts::Index(&[index]))
            .send()
            .await?;
        let answer = http::json_ok(response, "get mapping").await?;
        let mapped = answer
            .pointer(&format!("/{index}/mappings/properties"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut missing = Map::new();
        for (field, declared) in &self.properties {
            match mapped.get(field) {
                None => {
                    missing.insert(field.clone(), declared.clone());
                }
                Some(found) if found.get("type") != declared.get("type") => {
                    return Err(EsError::MappingsConflict {
                        index: index.to_owned(),
                        reason: format!(
                            "field [{field}] is mapped as {}, the read model declares {}",
                            found.get("type").unwrap_or(&Value::Null),
                            declared.get("type").unwrap_or(&Value::Null)
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let response = self
            .client
            .indices()
            .put_mapping(IndicesPutMappingParts::Index(&[index]))
            .body(json!({ "properties": missing }))
            .send()
            .await?;
        let (status, answer) = http::json_any(response).await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        if status == 400 && http::reason(&answer).contains("cannot be changed") {
            return Err(EsError::MappingsConflict {
                index: index.to_owned(),
                reason: http::reason(&answer),
            });
        }
        Err(EsError::Status {
            operation: "put mapping",
            status,
            reason: http::reason(&answer),
        })
    }

    /// Creates `{name}_v{version}` without alias, set up for filling (see
    /// [`filling_settings`](Self::filling_settings)); `false` when it already existed.
    pub(crate) async fn create_filling(&self, version: u32) -> Result<bool> {
        let index = self.version_name(version);
        let mut body = self.index_body(None);
        if let (Some(settings), Value::Object(filling)) = (
            body["settings"].as_object_mut(),
            self.filling_settings(true),
        ) {
            settings.extend(filling);
        }
        self.create(&index, body).await
    }

    /// Creates `index` from `body`: `true` when created, `false` when it already existed.
    async fn create(&self, index: &str, body: Value) -> Result<bool> {
        let response = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(index))
            .body(body)
            .send()
            .await?;
        let (status, answer) = http::json_any(response).await?;
        if (200..300).contains(&status) {
            return Ok(true);
        }
        if http::error_type(&answer) == Some("resource_already_exists_exception") {
            return Ok(false);
        }
        Err(EsError::Status {
            operation: "create index",
            status,
            reason: http::reason(&answer),
        })
    }

    /// The identity the node gave `index` when it was created (`index.uuid`): an index deleted
    /// and created again under the same name has another.
    pub(crate) async fn index_uuid(&self, index: &str) -> Result<String> {
        let response = self
            .client
            .indices()
            .get_settings(IndicesGetSettingsParts::IndexName(
                &[index],
                &["index.uuid"],
            ))
            .send()
            .await?;
        let answer = http::json_ok(response, "get settings").await?;
        answer
            .pointer(&format!("/{index}/settings/index/uuid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| http::unexpected("get settings", format!("no uuid for {index}")))
    }

    /// The dynamic settings of an index a rebuild is `filling` (refresh off, no replicas:
    /// each document is indexed once, on the primary), or of one that serves (this read
    /// model's refresh interval, or the server's default, and replicas).
    fn filling_settings(&self, filling: bool) -> Value {
        if filling {
            json!({ "refresh_interval": "-1", "number_of_replicas": 0 })
        } else {
            json!({
                "refresh_interval": self.settings.refresh_interval,
                "number_of_replicas": self.settings.replicas,
            })
        }
    }

    /// Sets `index` up for filling, or for serving again (see
    /// [`filling_settings`](Self::filling_settings)).
    pub(crate) async fn set_filling(&self, index: &str, filling: bool) -> Result<()> {
        let response = self
            .client
            .indices()
            .put_settings(IndicesPutSettingsParts::Index(&[index]))
            .body(json!({ "index": self.filling_settings(filling) }))
            .send()
            .await?;
        http::json_ok(response, "put settings").await.map(drop)
    }

    /// Makes everything written to `index` searchable.
    pub(crate) async fn refresh(&self, index: &str) -> Result<()> {
        refresh(&self.client, index).await
    }

    /// Moves the alias from `from` to `to` in one atomic `_aliases` call, while the rebuild's
    /// write block on `from` holds. Fails, changing nothing, when the alias is no longer on
    /// `from`, or when the block was released ([`EsError::WriteBlocked`]).
    pub(crate) async fn swap(&self, from: &str, to: &str) -> Result<()> {
        let lock = crate::block::lock_alias(from);
        let response = self
            .client
            .indices()
            .update_aliases()
            .body(json!({ "actions": [
                // Without `must_exist` a node answers 200 when the alias is not on `from` and
                // still adds it to `to`: the alias then spans two indices.
                { "remove": { "index": from, "alias": &self.name, "must_exist": true } },
                { "add": { "index": to, "alias": &self.name } },
                // Only while the rebuild's write block holds (see `block::lock_alias`).
                { "remove": { "index": from, "alias": &lock, "must_exist": true } },
            ] }))
            .send()
            .await?;
        let (status, answer) = http::json_any(response).await?;
        if status == 404
            && http::error_type(&answer) == Some("aliases_not_found_exception")
            && http::reason(&answer).contains(&lock)
        {
            return Err(EsError::WriteBlocked {
                index: from.to_owned(),
                state: "released before the swap (the rebuild stalled past its time to live); \
                        the alias stays, the next rebuild resumes"
                    .to_owned(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(EsError::Status {
                operation: "update aliases",
                status,
                reason: http::reason(&answer),
            });
        }
        if answer.get("errors").and_then(Value::as_bool) == Some(true) {
            return Err(http::unexpected(
                "update aliases",
                format!("an action failed: {answer}"),
            ));
        }
        Ok(())
    }

    /// Deletes `index` (absent is fine).
    pub(crate) async fn delete_index(&self, index: &str) -> Result<()> {
        let response = self
            .client
            .indices()
            .delete(IndicesDeleteParts::Index(&[index]))
            .send()
            .await?;
        let (status, answer) = http::json_any(response).await?;
        if (200..300).contains(&status) || status == 404 {
            return Ok(());
        }
        Err(EsError::Status {
            operation: "delete index",
            status,
            reason: http::reason(&answer),
        })
    }

    fn parse_version(&self, index: &str) -> Option<u32> {
        let version = index.strip_prefix(&self.name)?.strip_prefix("_v")?;
        if version.starts_with('0') || version.starts_with('+') {
            return None;
        }
        version.parse().ok()
    }

    fn layout(&self, detail: String) -> EsError {
        EsError::UnexpectedLayout {
            name: self.name.clone(),
            detail,
        }
    }
}

/// Checks that `name` can be an alias and an index prefix: lowercase ASCII letters, digits,
/// `-`, `_`, `.`, starting with a letter or digit, at most 200 bytes.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(EsError::InvalidName(name.to_owned()))
    }
}

/// Makes everything written to `target` (an index or an alias) before the call searchable; a
/// shard that failed to refresh is an error.
pub(crate) async fn refresh(client: &Elasticsearch, target: &str) -> Result<()> {
    let response = client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[target]))
        .send()
        .await?;
    let answer = http::json_ok(response, "refresh").await?;
    match answer.pointer("/_shards/failed").and_then(Value::as_u64) {
        Some(failed) if failed > 0 => Err(http::unexpected(
            "refresh",
            format!("{failed} shard(s) failed to refresh: {answer}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elasticsearch::http::transport::Transport;

    fn index() -> EsIndex {
        let client = Elasticsearch::new(Transport::single_node("http://127.0.0.1:1").unwrap());
        EsIndex::new(client, "orders", json!({ "total": { "type": "long" } })).unwrap()
    }

    #[tokio::test]
    async fn a_swap_from_an_index_the_alias_left_changes_nothing() {
        let node = crate::testing::TestNode::from_env().expect("ELASTICSEARCH_URL");
        let name = node.unique_name("swap");
        let live = EsIndex::new(node.client().clone(), &name, json!({})).unwrap();
        live.ensure().await.unwrap();
        assert!(live.create_filling(2).await.unwrap());
        assert!(live.create_filling(3).await.unwrap());
        let (v1, v2, v3) = (
            live.version_name(1),
            live.version_name(2),
            live.version_name(3),
        );

        // The alias is on v1; a swap that believes it is on v2 is refused whole.
        let refused = live.swap(&v2, &v3).await;
        let on = live.current().await.map(|on| on.map(|v| v.index));

        node.clean_up().await.unwrap();
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(
            on.ok(),
            Some(Some(v1)),
            "the alias stays where it was, on one index"
        );
    }

    #[test]
    fn names_must_be_usable_as_aliases() {
        for good in ["orders", "shop.orders-2", "a_b"] {
            assert!(matches!(validate_name(good), Ok(())), "{good}");
        }
        for bad in ["", "Orders", "_x", "-x", "a b", "a*", "a/b", "ü"] {
            let error = validate_name(bad).unwrap_err();
            assert!(
                matches!(&error, EsError::InvalidName(name) if name == bad)
                    && !error.is_transient(),
                "{bad}: {error:?}"
            );
        }
    }

    #[test]
    fn index_bodies_are_strict_and_carry_the_metadata_mapping() {
        let body = index()
            .with_settings(IndexSettings::default().replicas(2))
            .index_body(Some("-1"));
        assert_eq!(body["mappings"]["dynamic"], "strict");
        assert_eq!(body["mappings"]["properties"]["total"]["type"], "long");
        assert_eq!(body["mappings"]["properties"]["cqrs"], meta_mapping());
        assert_eq!(body["settings"]["number_of_replicas"], 2);
        assert_eq!(body["settings"]["refresh_interval"], "-1");
        assert!(index().index_body(None)["settings"]
            .get("refresh_interval")
            .is_none());
    }

    #[test]
    fn a_filling_index_has_no_refresh_and_no_replicas_until_it_serves() {
        let model =
            index().with_settings(IndexSettings::default().replicas(2).refresh_interval("5s"));
        assert_eq!(
            model.filling_settings(true),
            json!({ "refresh_interval": "-1", "number_of_replicas": 0 })
        );
        assert_eq!(
            model.filling_settings(false),
            json!({ "refresh_interval": "5s", "number_of_replicas": 2 })
        );
        // The server's default interval comes back as a null setting.
        assert_eq!(
            index().filling_settings(false)["refresh_interval"],
            Value::Null
        );
    }

    #[test]
    fn versions_come_from_the_index_name() {
        let index = index();
        assert_eq!(index.version_name(3), "orders_v3");
        assert_eq!(index.parse_version("orders_v12"), Some(12));
        assert_eq!(index.parse_version("orders_v"), None);
        assert_eq!(index.parse_version("orders_v01"), None);
        assert_eq!(index.parse_version("other_v1"), None);
    }

    #[test]
    fn the_metadata_field_is_reserved() {
        let client = Elasticsearch::new(Transport::single_node("http://127.0.0.1:1").unwrap());
        assert!(matches!(
            EsIndex::new(client.clone(), "x", json!({ "cqrs": {} })),
            Err(EsError::InvalidMappings(_))
        ));
        let error = EsIndex::new(client, "x", json!([])).unwrap_err();
        assert!(
            matches!(&error, EsError::InvalidMappings(_)) && !error.is_transient(),
            "{error:?}"
        );
    }
}
