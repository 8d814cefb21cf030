//! The entity ids: UUID v7 newtypes, one type per entity so that a product
//! id can never be passed where an order id is meant.

/// Declares a time-ordered id type: a UUID v7 whose hyphenated lower-case
/// form sorts by creation time, which every "newest first" listing and
/// index key relies on.
macro_rules! time_ordered_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(uuid::Uuid::now_v7())
            }

            pub fn parse(raw: &str) -> Option<Self> {
                uuid::Uuid::parse_str(raw).ok().map($name)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

pub(crate) use time_ordered_id;

#[cfg(test)]
mod tests {
    time_ordered_id!(
        /// An id for the tests only.
        ThingId
    );

    #[test]
    fn ids_made_later_sort_later_as_text_and_as_values() {
        let ids: Vec<ThingId> = (0..100).map(|_| ThingId::new()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert!(texts.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn an_id_parses_back_from_its_text_and_garbage_does_not() {
        let id = ThingId::new();
        assert_eq!(ThingId::parse(&id.to_string()), Some(id));
        assert_eq!(ThingId::parse("not-a-uuid"), None);
    }
}
