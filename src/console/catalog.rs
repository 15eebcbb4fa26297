//! The admin resources the console shows with its generic list/edit page (`resource.rs`), one
//! [`Resource`] descriptor each. A page for a new admin resource is one entry in [`RESOURCES`]:
//! its API path, key column, list columns and the fields of its PATCH/POST bodies. Values go to
//! the admin API's handler as JSON (`crate::admin::call`), so its rules and messages apply.
//!
//! Owns: the descriptors. Must not touch: validation (the admin API's), markup.

/// How a form field becomes a JSON value of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// a string; empty = left out
    Text,
    /// a string; empty = `null` (clears the value)
    NullableText,
    /// an integer (text that is not one is sent as given: the API names the field); empty = left out
    Int,
    /// like `Int`; empty = `null`
    NullableInt,
    /// a decimal sent as a string (exact); empty = `null`
    NullableDecimal,
    /// a decimal sent as a string; empty = left out
    Decimal,
    /// true/false from a select
    Bool,
    /// comma-separated strings → an array (replaces the stored list)
    List,
    /// one of the given words
    Choice(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn f(name: &'static str, kind: Kind, help: &'static str) -> Field {
    Field { name, kind, help }
}

/// One admin resource as a console page (`/console/r/<slug>`).
#[derive(Debug)]
pub struct Resource {
    pub slug: &'static str,
    pub title: &'static str,
    /// the collection's admin path; items are `<api>/<key>`
    pub api: &'static str,
    /// the column whose value names an item
    pub key: &'static str,
    pub columns: &'static [&'static str],
    /// fields of the item's PATCH body (none: no edit form)
    pub edit: &'static [Field],
    /// fields of the collection's POST body (none: no create form)
    pub create: &'static [Field],
    /// the list answers pages (`limit`, `after` = the last key of the page before): the page
    /// shows [`PAGE`] rows at a time (a list that grows with the network, e.g. customers)
    pub paged: bool,
}

/// Rows of one page of a paged list.
pub const PAGE: usize = 100;

const BILLING: Kind = Kind::Choice(&["LRN", "OCN_LATA", "DNIS", "INTERNATIONAL"]);

/// Every resource with a generic page, in navigation order.
pub static RESOURCES: &[Resource] = &[
    Resource {
        slug: "customers",
        title: "Customers",
        api: "/v1/admin/customers",
        key: "ban",
        columns: &[
            "ban",
            "name",
            "enabled",
            "max_rate",
            "max_concurrent_calls",
            "max_cps",
            "partitions",
        ],
        edit: &[
            f("name", Kind::Text, ""),
            f("enabled", Kind::Bool, ""),
            f(
                "max_rate",
                Kind::NullableDecimal,
                "ceiling per minute, e.g. 0.05; empty = none",
            ),
            f("max_results", Kind::Int, "routes per answer (1-100)"),
            f(
                "max_concurrent_calls",
                Kind::NullableInt,
                "empty = no limit",
            ),
            f("max_cps", Kind::NullableInt, "empty = no limit"),
            f(
                "blocked_prefixes",
                Kind::List,
                "comma-separated, e.g. 1900, 1976",
            ),
            f(
                "allowed_classes",
                Kind::List,
                "domestic, international, tollfree, premium, canada, caribbean",
            ),
            f(
                "margin_percent",
                Kind::NullableDecimal,
                "default margin %; empty = none",
            ),
            f(
                "fixed_fee",
                Kind::Decimal,
                "per minute, added after the margin",
            ),
            f("allow_negative_margin", Kind::Bool, ""),
            f(
                "billing_min_seconds",
                Kind::NullableInt,
                "empty = the vendor's",
            ),
            f(
                "billing_inc_seconds",
                Kind::NullableInt,
                "empty = the vendor's",
            ),
            f(
                "emergency_callback",
                Kind::NullableText,
                "number sent with 911 calls",
            ),
        ],
        create: &[
            f("ban", Kind::Text, "billing account number"),
            f("name", Kind::Text, ""),
        ],
        paged: true,
    },
    Resource {
        slug: "partitions",
        title: "Partitions",
        api: "/v1/admin/partitions",
        key: "name",
        columns: &["name", "description", "routes"],
        edit: &[],
        create: &[f("name", Kind::Text, ""), f("description", Kind::Text, "")],
        paged: false,
    },
    Resource {
        slug: "routes",
        title: "Routes",
        api: "/v1/admin/routes",
        key: "name",
        columns: &[
            "name", "vendor", "priority", "weight", "capacity", "enabled",
        ],
        edit: &[
            f("priority", Kind::Int, "lower first among equal rates"),
            f("weight", Kind::Int, ""),
            f("capacity", Kind::Int, "concurrent calls"),
            f("enabled", Kind::Bool, ""),
        ],
        create: &[
            f("name", Kind::Text, ""),
            f("vendor", Kind::Text, "an existing vendor"),
            f("priority", Kind::Int, ""),
            f("weight", Kind::Int, ""),
        ],
        paged: false,
    },
    Resource {
        slug: "vendors",
        title: "Vendors",
        api: "/v1/admin/vendors",
        key: "name",
        columns: &["name", "billing_model", "dialstring", "enabled"],
        edit: &[
            f("billing_model", BILLING, ""),
            f("dialstring", Kind::Text, "e.g. sip:{number}@{host}:{port}"),
            f("enabled", Kind::Bool, ""),
        ],
        create: &[
            f("name", Kind::Text, ""),
            f("billing_model", BILLING, ""),
            f("dialstring", Kind::Text, "empty = the default"),
        ],
        paged: false,
    },
];

pub fn find(slug: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every descriptor names admin routes that exist, so a page never offers a form the API
    /// has no handler for.
    #[test]
    fn descriptors_name_existing_admin_routes() {
        for r in RESOURCES {
            assert!(
                crate::admin::role_needed("GET", r.api).is_some(),
                "{}",
                r.api
            );
            let item = format!("{}/x", r.api);
            assert!(crate::admin::role_needed("GET", &item).is_some(), "{item}");
            if !r.edit.is_empty() {
                assert!(
                    crate::admin::role_needed("PATCH", &item).is_some(),
                    "{item}"
                );
            }
            if !r.create.is_empty() {
                assert!(
                    crate::admin::role_needed("POST", r.api).is_some(),
                    "{}",
                    r.api
                );
            }
            assert!(r.columns.contains(&r.key));
        }
    }
}
