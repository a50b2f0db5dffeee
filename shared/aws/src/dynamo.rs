//! The lease lock and the journal on one DynamoDB table.
//!
//! The table has a string partition key `pk` and a string sort key `sk`
//! (the bootstrap and the deployment template create it so). A namespace
//! prefixes every partition key, so one table can serve several
//! repositories (and the tests run side by side):
//!
//! | pk | sk | attributes |
//! | --- | --- | --- |
//! | `<ns>#lease#<name>` | `lease` | `owner`, `token` (grows), `expires` (ms), `marks` |
//! | `<ns>#seq` | `seq` | `n`: the last journal sequence number |
//! | `<ns>#journal` | 20-digit sequence number | `id`, `body`: a pending change |
//! | `<ns>#id#<idempotency key>` | `id` | `seq`: which number the key got |
//! | `<ns>#replica` | replica name | `generation` |
//!
//! Every write is conditional. Taking a lease: the item is absent or its
//! `expires` has passed. Committing (marking changes done, recording a
//! generation) is a transaction whose first item is a condition check on the
//! lease: same owner and token, not expired. Appending is a transaction that
//! creates the idempotency item only if absent together with the change, so
//! a repeated key adds nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use raptr_store::table::{
    check_change, now_ms, Appended, Change, Journal, Lease, LeaseLock, Release, TableError,
    TableResult,
};

use crate::http_status;

/// The condition of every write a lease holder makes: still its lease.
const CURRENT: &str = "#o = :o AND #t = :t AND #e > :now";

fn current_names() -> HashMap<String, String> {
    [("#o", "owner"), ("#t", "token"), ("#e", "expires")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn current_values(lease: &Lease) -> Item {
    HashMap::from([
        (":o".to_string(), s(&lease.owner)),
        (":t".to_string(), n(lease.token)),
        (":now".to_string(), n(now_ms())),
    ])
}

/// DynamoDB takes at most 100 items per transaction; one is the lease check.
const BATCH: usize = 99;

/// The table of one repository (one namespace of a DynamoDB table).
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    ns: String,
}

impl fmt::Debug for DynamoTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoTable")
            .field("table", &self.table)
            .field("ns", &self.ns)
            .finish()
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// How long an idempotency key of the journal is kept (the table's TTL
/// attribute `ttl`, in seconds since the epoch): 30 days.
pub const ID_TTL_S: u64 = 30 * 24 * 3600;

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_n(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn get_s(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Turns an SDK failure about `what` into the port's error.
fn classify<E>(
    what: &str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = http_status(&err);
    let code = err.code().unwrap_or_default().to_string();
    let transient = status.is_none()
        || matches!(status, Some(500..=599))
        || matches!(
            code.as_str(),
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "TransactionConflictException"
                | "TransactionInProgressException"
        );
    let source: Box<dyn std::error::Error + Send + Sync> = crate::explain("DynamoDB", &err).into();
    if transient {
        TableError::Transient {
            what: what.to_string(),
            source,
        }
    } else {
        TableError::Permanent {
            what: what.to_string(),
            source,
        }
    }
}

fn is_condition_failed<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// Which items of a cancelled transaction failed their condition.
fn cancelled_conditions(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<bool>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>, namespace: impl Into<String>) -> Self {
        DynamoTable {
            client,
            table: table.into(),
            ns: namespace.into(),
        }
    }

    fn key(&self, pk: &str, sk: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(format!("{}#{pk}", self.ns))),
            ("sk".to_string(), s(sk)),
        ])
    }

    fn lease_key(&self, name: &str) -> Item {
        self.key(&format!("lease#{name}"), "lease")
    }

    /// The condition-check item every commit carries.
    fn lease_check(&self, lease: &Lease) -> TableResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(self.lease_key(&lease.name)))
            .condition_expression(CURRENT)
            .set_expression_attribute_names(Some(current_names()))
            .set_expression_attribute_values(Some(current_values(lease)))
            .build()
            .map_err(|e| TableError::permanent("lease check", e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// An UpdateItem on `lease`'s item, conditional on it still being
    /// current (`CURRENT`); the caller adds its update and may extend the
    /// condition.
    fn update_current(
        &self,
        lease: &Lease,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.lease_key(&lease.name)))
            .set_expression_attribute_names(Some(current_names()))
            .set_expression_attribute_values(Some(current_values(lease)))
    }

    async fn read_lease(&self, name: &str) -> TableResult<Option<Item>> {
        let what = format!("lease {name}");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.lease_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&what, e))?;
        Ok(out.item)
    }

    /// Runs a fenced transaction: `items` after the lease check. `Ok(None)`
    /// when it committed, `Ok(Some(failed))` when a condition other than
    /// the lease's failed (by index into `items`).
    async fn fenced(
        &self,
        what: &str,
        lease: &Lease,
        items: Vec<TransactWriteItem>,
    ) -> TableResult<Option<Vec<bool>>> {
        let mut all = vec![self.lease_check(lease)?];
        all.extend(items);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(all))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match cancelled_conditions(&e) {
                Some(failed) if failed.first() == Some(&true) => Err(TableError::LeaseLost {
                    name: lease.name.clone(),
                }),
                Some(failed) if failed.iter().any(|f| *f) => {
                    Ok(Some(failed.into_iter().skip(1).collect()))
                }
                _ => Err(classify(what, e)),
            },
        }
    }

    async fn take(&self, name: &str, owner: &str, ttl: Duration) -> TableResult<Option<Lease>> {
        let now = now_ms();
        let expires = now + ttl.as_millis() as u64;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.lease_key(name)))
            .update_expression("SET #o = :o, #e = :e, #m = if_not_exists(#m, :zero) ADD #t :one")
            .condition_expression("attribute_not_exists(pk) OR #e <= :now")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#e", "expires")
            .expression_attribute_names("#m", "marks")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":e", n(expires))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Some(Lease {
                    name: name.to_string(),
                    owner: owner.to_string(),
                    token: get_n(&item, "token"),
                    expires_at_ms: expires,
                    seen_marks: get_n(&item, "marks"),
                }))
            }
            Err(e) if is_condition_failed(&e) => {
                // The SDK may have retried a take whose response was lost:
                // then the lease is ours already. An owner holds at most
                // one lease of a name at a time, so an unexpired lease in
                // our name is this one. Which marks arrived since is
                // unknown: count none as seen, so the release asks for a
                // rerun (harmless) rather than lose one.
                let Some(item) = self.read_lease(name).await? else {
                    return Ok(None);
                };
                let exp = get_n(&item, "expires");
                if get_s(&item, "owner") == owner && exp > now_ms() {
                    return Ok(Some(Lease {
                        name: name.to_string(),
                        owner: owner.to_string(),
                        token: get_n(&item, "token"),
                        expires_at_ms: exp,
                        seen_marks: get_n(&item, "marks").wrapping_sub(1),
                    }));
                }
                Ok(None)
            }
            Err(e) => Err(classify(&format!("lease {name}"), e)),
        }
    }

    async fn mark(&self, name: &str) -> TableResult<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.lease_key(name)))
            .update_expression("ADD #m :one")
            .condition_expression("attribute_exists(pk) AND #e > :now")
            .expression_attribute_names("#m", "marks")
            .expression_attribute_names("#e", "expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(classify(&format!("lease {name}"), e)),
        }
    }

    async fn id_seq(&self, id: &str) -> TableResult<Option<u64>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&format!("id#{id}"), "id")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&format!("journal key {id}"), e))?;
        Ok(out.item.map(|i| get_n(&i, "seq")))
    }

    /// Queries one partition to its end (or `limit` items), in sort order.
    async fn query_all(&self, pk: &str, limit: usize) -> TableResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("{}#{pk}", self.ns)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .limit((limit - out.len()).min(1000) as i32)
                .send()
                .await
                .map_err(|e| classify(pk, e))?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl LeaseLock for DynamoTable {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        self.take(name, owner, ttl).await
    }

    async fn acquire_or_mark(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        // Either the take or the mark succeeds unless the lease changes hands
        // in between (released, or expired): then look again.
        for _ in 0..100 {
            if let Some(lease) = self.take(name, owner, ttl).await? {
                return Ok(Some(lease));
            }
            if self.mark(name).await? {
                return Ok(None);
            }
        }
        Err(TableError::Transient {
            what: format!("lease {name}"),
            source: "the lease kept changing hands; try again".into(),
        })
    }

    async fn renew(&self, lease: &mut Lease, ttl: Duration) -> TableResult<()> {
        let expires = now_ms() + ttl.as_millis() as u64;
        let r = self
            .update_current(lease)
            .update_expression("SET #e = :e")
            .condition_expression(CURRENT)
            .expression_attribute_values(":e", n(expires))
            .send()
            .await;
        match r {
            Ok(_) => {
                lease.expires_at_ms = expires;
                Ok(())
            }
            Err(e) if is_condition_failed(&e) => Err(TableError::LeaseLost {
                name: lease.name.clone(),
            }),
            Err(e) => Err(classify(&format!("lease {}", lease.name), e)),
        }
    }

    async fn release(&self, lease: &mut Lease) -> TableResult<Release> {
        let r = self
            .update_current(lease)
            .update_expression("SET #e = :zero")
            .condition_expression(format!("{CURRENT} AND #m = :seen"))
            .expression_attribute_names("#m", "marks")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":seen", n(lease.seen_marks))
            .send()
            .await;
        match r {
            Ok(_) => Ok(Release::Released),
            Err(e) if is_condition_failed(&e) => {
                // Lost, or marked: the item tells which. Marks only grow and
                // a lost lease never comes back, so reading after the failed
                // write cannot mistake one for the other.
                let item = self.read_lease(&lease.name).await?.unwrap_or_default();
                let ours = get_s(&item, "owner") == lease.owner
                    && get_n(&item, "token") == lease.token
                    && get_n(&item, "expires") > now_ms();
                if get_s(&item, "owner") == lease.owner
                    && get_n(&item, "token") == lease.token
                    && get_n(&item, "expires") == 0
                {
                    // Our release landed, and the SDK retried it after a
                    // lost response: the retry's condition failed.
                    return Ok(Release::Released);
                }
                if !ours {
                    return Err(TableError::LeaseLost {
                        name: lease.name.clone(),
                    });
                }
                lease.seen_marks = get_n(&item, "marks");
                Ok(Release::Rerun)
            }
            Err(e) => Err(classify(&format!("lease {}", lease.name), e)),
        }
    }
}

#[async_trait]
impl Journal for DynamoTable {
    async fn append(&self, id: &str, body: &str) -> TableResult<Appended> {
        check_change(id, body)?;
        let what = format!("journal key {id}");
        if let Some(seq) = self.id_seq(id).await? {
            return Ok(Appended { seq, new: false });
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key("seq", "seq")))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("journal sequence", e))?;
        let seq = get_n(&out.attributes.unwrap_or_default(), "n");
        let mut id_item = self.key(&format!("id#{id}"), "id");
        id_item.insert("seq".into(), n(seq));
        // The table's TTL deletes idempotency keys once no redelivery of
        // their event can arrive: SQS keeps a message 14 days at most.
        id_item.insert("ttl".into(), n(now_ms() / 1000 + ID_TTL_S));
        let mut entry = self.key("journal", &format!("{seq:020}"));
        entry.insert("id".into(), s(id));
        entry.insert("body".into(), s(body));
        let put = |item: Item, cond: Option<&str>| -> TableResult<TransactWriteItem> {
            let p = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(cond.map(str::to_string))
                .build()
                .map_err(|e| TableError::permanent(&what, e))?;
            Ok(TransactWriteItem::builder().put(p).build())
        };
        let items = vec![
            put(id_item, Some("attribute_not_exists(pk)"))?,
            put(entry, None)?,
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            // The sequence number is spent either way: a gap is harmless.
            Ok(_) => Ok(Appended { seq, new: true }),
            Err(e) if cancelled_conditions(&e).is_some_and(|f| f.first() == Some(&true)) => {
                let seq = self
                    .id_seq(id)
                    .await?
                    .ok_or_else(|| TableError::Transient {
                        what: what.clone(),
                        source: "appended concurrently but not readable yet".into(),
                    })?;
                Ok(Appended { seq, new: false })
            }
            Err(e) => Err(classify(&what, e)),
        }
    }

    async fn pending(&self, limit: usize) -> TableResult<Vec<Change>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self.query_all("journal", limit).await?;
        items
            .iter()
            .map(|i| {
                let sk = get_s(i, "sk");
                let seq = sk.parse().map_err(|_| {
                    TableError::permanent(
                        format!("journal entry {sk:?}"),
                        "its sort key is not a sequence number",
                    )
                })?;
                Ok(Change {
                    seq,
                    id: get_s(i, "id"),
                    body: get_s(i, "body"),
                })
            })
            .collect()
    }

    async fn mark_done(&self, lease: &Lease, seqs: &[u64]) -> TableResult<()> {
        let chunks: Vec<&[u64]> = if seqs.is_empty() {
            vec![&[]]
        } else {
            seqs.chunks(BATCH).collect()
        };
        for chunk in chunks {
            let mut items = Vec::with_capacity(chunk.len());
            for seq in chunk {
                let d = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(self.key("journal", &format!("{seq:020}"))))
                    .build()
                    .map_err(|e| TableError::permanent("journal mark done", e))?;
                items.push(TransactWriteItem::builder().delete(d).build());
            }
            self.fenced("journal mark done", lease, items).await?;
        }
        Ok(())
    }

    async fn replica_generations(&self) -> TableResult<BTreeMap<String, u64>> {
        let items = self.query_all("replica", usize::MAX).await?;
        Ok(items
            .iter()
            .map(|i| (get_s(i, "sk"), get_n(i, "generation")))
            .collect())
    }

    async fn set_replica_generation(
        &self,
        lease: &Lease,
        replica: &str,
        generation: u64,
    ) -> TableResult<bool> {
        let what = format!("replica {replica}");
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(self.key("replica", replica)))
            .update_expression("SET #g = :g")
            .condition_expression("attribute_not_exists(#g) OR #g < :g")
            .expression_attribute_names("#g", "generation")
            .expression_attribute_values(":g", n(generation))
            .build()
            .map_err(|e| TableError::permanent(&what, e))?;
        let item = TransactWriteItem::builder().update(u).build();
        Ok(self.fenced(&what, lease, vec![item]).await?.is_none())
    }
}
