//! How events are named on the bus, and how streams are spread over partitions.
//!
//! An event is published on `{prefix}.{tenant}.{aggregate_type}.{aggregate_id}.{bucket}`, where
//! the bucket is the stream's hash modulo [`BUS_BUCKETS`]. A projection partition is the same
//! hash modulo the partition count, so when that count divides [`BUS_BUCKETS`] a partition's
//! consumer can ask JetStream for exactly its own buckets and receives nothing else.
//!
//! Events published before buckets existed have no bucket token (four tokens after the
//! prefix). Every filter here also matches them, so none is lost across an upgrade: they reach
//! every partition, which skips other partitions' streams by id.

/// Buckets the bus spreads streams over (the last token of an event's subject).
pub const BUS_BUCKETS: u32 = 64;

/// FNV-1a of a stream id: stable across processes, builds and restarts.
pub fn stream_hash(stream_id: &str) -> u64 {
    stream_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The partition a stream belongs to, of `partitions`.
pub fn partition_of(stream_id: &str, partitions: u32) -> u32 {
    (stream_hash(stream_id) % u64::from(partitions.max(1))) as u32
}

/// The bus bucket of a stream: its partition of [`BUS_BUCKETS`].
pub fn bucket_of(stream_id: &str) -> u32 {
    partition_of(stream_id, BUS_BUCKETS)
}

/// How events are named on the bus (see the module's documentation).
///
/// Every part must be a valid subject token (no `.`, `*`, `>` or whitespace); the API validates
/// ids and tenants before they can reach an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under the given prefix (e.g. `events`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// Everything the stream captures.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The subject one event is published on.
    pub fn for_event(&self, event: &crate::event::RecordedEvent) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.prefix,
            event.tenant_id,
            event.aggregate_type,
            event.aggregate_id,
            bucket_of(&event.aggregate_id)
        )
    }

    /// The aggregate id a subject of [`Subjects::for_event`] (or one published before buckets)
    /// names, without reading the message; `None` for a subject outside this scheme.
    pub fn aggregate_id_of<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let mut tokens = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('.')?
            .split('.');
        let (_tenant, _type, id) = (tokens.next()?, tokens.next()?, tokens.next()?);
        match tokens.next() {
            None => Some(id),
            Some(bucket) if bucket.parse::<u32>().is_ok() => tokens.next().is_none().then_some(id),
            Some(_) => None,
        }
    }

    /// Every event of one aggregate type, in all tenants.
    pub fn for_aggregate_type(&self, aggregate_type: &str) -> String {
        format!("{}.*.{aggregate_type}.>", self.prefix)
    }

    /// Every event of one aggregate type in one tenant.
    pub fn for_tenant_type(&self, tenant: &str, aggregate_type: &str) -> String {
        format!("{}.{tenant}.{aggregate_type}.>", self.prefix)
    }

    /// Every event of one stream.
    pub fn for_stream(
        &self,
        tenant: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Vec<String> {
        let stream = format!("{}.{tenant}.{aggregate_type}.{aggregate_id}", self.prefix);
        vec![format!("{stream}.*"), stream]
    }

    /// The filters that deliver the events of one aggregate type in `partition` of
    /// `partitions` and, when `partitions` divides [`BUS_BUCKETS`], nothing else (else every
    /// event of the type, and the consumer skips other partitions' by id). One partition takes
    /// every event of the type in one filter.
    pub fn for_partition(
        &self,
        aggregate_type: &str,
        partition: u32,
        partitions: u32,
    ) -> Vec<String> {
        let partitions = partitions.max(1);
        if partitions == 1 || !BUS_BUCKETS.is_multiple_of(partitions) {
            return vec![self.for_aggregate_type(aggregate_type)];
        }
        let mut filters: Vec<String> = (partition..BUS_BUCKETS)
            .step_by(partitions as usize)
            .map(|bucket| format!("{}.*.{aggregate_type}.*.{bucket}", self.prefix))
            .collect();
        // Published before buckets: to every partition.
        filters.push(format!("{}.*.{aggregate_type}.*", self.prefix));
        filters
    }
}

/// Whether `token` can be used as one NATS subject token.
pub fn is_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::event::sample;

    /// NATS subject matching: `*` is one token, `>` one or more at the end.
    fn matches(filter: &str, subject: &str) -> bool {
        let (mut filter, mut subject) = (filter.split('.'), subject.split('.'));
        loop {
            match (filter.next(), subject.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(f), Some(s)) if f == s => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    #[test]
    fn subjects_name_the_tenant_type_aggregate_and_bucket() {
        let subjects = Subjects::new("events");
        assert_eq!(subjects.all(), "events.>");
        let id = "acme:0192f0c4-0000";
        let subject = subjects.for_event(&sample(id));
        assert_eq!(subject, format!("events.acme.User.{id}.{}", bucket_of(id)));
        assert_eq!(subjects.aggregate_id_of(&subject), Some(id));
        assert!(matches(&subjects.for_aggregate_type("User"), &subject));
        assert!(matches(&subjects.for_tenant_type("acme", "User"), &subject));
        assert!(!matches(
            &subjects.for_tenant_type("other", "User"),
            &subject
        ));
        let stream = subjects.for_stream("acme", "User", id);
        assert_eq!(stream.iter().filter(|f| matches(f, &subject)).count(), 1);
    }

    #[test]
    fn a_subject_names_its_aggregate_id_with_or_without_a_bucket() {
        let subjects = Subjects::new("bench.events");
        for (subject, id) in [
            (
                "bench.events.acme.user.0192f0c4-0000",
                Some("0192f0c4-0000"),
            ),
            (
                "bench.events.acme.user.0192f0c4-0000.17",
                Some("0192f0c4-0000"),
            ),
            ("bench.events.acme.user", None),
            ("bench.events.acme.user.a.b", None),
            ("bench.events.acme.user.a.1.2", None),
            ("other.acme.user.a", None),
            ("bench.eventsX.acme.user.a", None),
        ] {
            assert_eq!(subjects.aggregate_id_of(subject), id, "{subject}");
        }
    }

    #[test]
    fn each_event_reaches_exactly_its_own_partition() {
        let subjects = Subjects::new("events");
        for n in 0..200 {
            let id = format!("acme:{}", Uuid::from_u128(n * 7_919));
            let bucketed = subjects.for_event(&sample(&id));
            let before_buckets = format!("events.acme.User.{id}");
            for partitions in [1, 2, 3, 4, 8, 64, 256] {
                let reached = |subject: &str| -> Vec<u32> {
                    (0..partitions)
                        .filter(|p| {
                            subjects
                                .for_partition("User", *p, partitions)
                                .iter()
                                .any(|filter| matches(filter, subject))
                        })
                        .collect()
                };
                let divides = BUS_BUCKETS.is_multiple_of(partitions);
                let everyone: Vec<u32> = (0..partitions).collect();
                let expected = if divides {
                    vec![partition_of(&id, partitions)]
                } else {
                    everyone.clone()
                };
                assert_eq!(reached(&bucketed), expected, "{id} of {partitions}");
                // Published before buckets: every partition gets it and skips it by id.
                assert_eq!(reached(&before_buckets), everyone, "{id} of {partitions}");
            }
        }
    }

    #[test]
    fn filters_of_one_partition_never_overlap() {
        let subjects = Subjects::new("events");
        let filters = subjects.for_partition("Job", 1, 4);
        assert_eq!(filters.len(), 17);
        for (a, first) in filters.iter().enumerate() {
            for second in &filters[a + 1..] {
                assert!(!matches(first, second) && !matches(second, first));
            }
        }
    }

    #[test]
    fn subject_tokens() {
        assert!(is_subject_token("tenant-1_a"));
        for bad in ["", "a.b", "a*", ">", "a b", "ü"] {
            assert!(!is_subject_token(bad), "{bad:?}");
        }
        assert!(is_subject_token(&"a".repeat(128)));
        assert!(!is_subject_token(&"a".repeat(129)));
        assert!(is_subject_token("-"));
        assert!(is_subject_token("_"));
    }
}
