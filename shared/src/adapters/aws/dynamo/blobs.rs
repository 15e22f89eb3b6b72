//! [`Blobs`] in the state table, chunked: `pk` = `BLOB#<key>`, `sk` = chunk index (5 digits),
//! binary `data` of at most [`CHUNK_BYTES`] (DynamoDB items stop at 400 KB).
//!
//! Each write gets a fresh `generation`; chunk 0 also holds the chunk count and total size and is
//! written last, so it commits the blob. A reader takes chunk 0's generation and accepts only
//! chunks of that generation, so it never stitches two writes together.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::item::{Fields, Item, ItemBuilder};
use super::state::live_state;
use super::{DynamoStore, TTL_ATTRIBUTE, conditional, dynamo_error, ttl_secs};
use crate::ports::{Blobs, PortError, PortResult};

/// Bytes per chunk item.
const CHUNK_BYTES: usize = 300_000;
/// Chunk indexes have five digits.
const MAX_CHUNKS: usize = 100_000;

fn blob_pk(key: &str) -> String {
    format!("BLOB#{key}")
}

fn chunk_sk(index: usize) -> String {
    format!("{index:05}")
}

/// What chunk 0 says about the blob.
struct Head {
    generation: String,
    chunks: usize,
    size: usize,
}

fn head(item: &Item) -> PortResult<Head> {
    let f = Fields::new(item, "blob");
    Ok(Head {
        generation: f.s("generation")?.to_string(),
        chunks: f.n("chunks")?,
        size: f.n("size")?,
    })
}

impl DynamoStore {
    async fn delete_stale_chunk(
        &self,
        key: &str,
        index: usize,
        generation: &str,
    ) -> PortResult<()> {
        let table = &self.tables.state;
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(super::item::key(blob_pk(key), chunk_sk(index))))
            // Only the generation we replaced: a concurrent writer's chunks stay.
            .condition_expression("generation = :gen")
            .expression_attribute_values(":gen", AttributeValue::S(generation.into()))
            .send()
            .await;
        conditional(result, "DeleteItem", table).map(drop)
    }
}

#[async_trait]
impl Blobs for DynamoStore {
    async fn put_blob(
        &self,
        key: &str,
        body: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> PortResult<()> {
        let chunks: Vec<&[u8]> = if body.is_empty() {
            vec![&[]]
        } else {
            body.chunks(CHUNK_BYTES).collect()
        };
        if chunks.len() >= MAX_CHUNKS {
            return Err(PortError::backend(
                "dynamodb",
                format!("blob `{key}` is {} bytes, too large to store", body.len()),
            ));
        }
        let previous = self.read_state(blob_pk(key), &chunk_sk(0)).await?;
        let previous = previous.as_ref().map(head).transpose().ok().flatten();

        let generation = uuid::Uuid::new_v4().to_string();
        let chunk_item = |index: usize, data: &[u8]| {
            let mut item = ItemBuilder::new()
                .s("pk", blob_pk(key))
                .s("sk", chunk_sk(index))
                .s("generation", &generation)
                .opt_n(TTL_ATTRIBUTE, expires_at.map(ttl_secs));
            // Empty binary values are left out rather than relied on.
            if !data.is_empty() {
                item = item.b("data", data);
            }
            item
        };
        // Chunk 0 last: until it is written, readers see the previous blob (or none).
        for (index, data) in chunks.iter().enumerate().skip(1) {
            self.put_state(chunk_item(index, data).build()).await?;
        }
        let head_item = chunk_item(0, chunks[0])
            .n("chunks", chunks.len())
            .n("size", body.len())
            .build();
        self.put_state(head_item).await?;

        if let Some(old) = previous {
            for index in chunks.len()..old.chunks.min(MAX_CHUNKS) {
                self.delete_stale_chunk(key, index, &old.generation).await?;
            }
        }
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        let table = &self.tables.state;
        let Some(first) = live_state(
            self.read_state(blob_pk(key), &chunk_sk(0)).await?,
            self.clock.now(),
        )?
        else {
            return Ok(None);
        };
        let head = head(&first)?;
        let mut body = Vec::with_capacity(head.size);
        body.extend_from_slice(Fields::new(&first, "blob").bytes("data")?);

        // The rest in sk order, page by page (about three chunks fit in a 1 MB page).
        let mut next = 1;
        let mut start = None;
        while next < head.chunks {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(blob_pk(key)))
                .expression_attribute_values(":from", AttributeValue::S(chunk_sk(1)))
                .expression_attribute_values(":to", AttributeValue::S(chunk_sk(head.chunks - 1)))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Query", table, &e))?;
            for item in out.items() {
                let f = Fields::new(item, "blob");
                if f.s("sk")? != chunk_sk(next) || f.s("generation")? != head.generation {
                    return Err(PortError::corrupt(
                        "blob",
                        format!("`{key}`: chunk {next} is missing or from another write"),
                    ));
                }
                body.extend_from_slice(f.bytes("data")?);
                next += 1;
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        if next != head.chunks || body.len() != head.size {
            return Err(PortError::corrupt(
                "blob",
                format!(
                    "`{key}`: {} of {} bytes in {next} of {} chunks",
                    body.len(),
                    head.size,
                    head.chunks
                ),
            ));
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_sort_numerically() {
        assert_eq!(chunk_sk(0), "00000");
        assert_eq!(chunk_sk(12), "00012");
        assert!(chunk_sk(9) < chunk_sk(10));
    }
}
