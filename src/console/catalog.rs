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
    /// comma-separated integers → an array of numbers (text that is not one is sent as given:
    /// the API names the field); empty = left out
    IntList,
    /// one of the given words
    Choice(&'static [&'static str]),
    /// a decimal sent as a string; empty = left out. The form shows the item's `<name>_e7`
    /// (money the API returns in 1e-7 units) as a decimal
    DecimalE7,
    /// a string typed into a password box, never shown back; empty = left out
    Secret,
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
    /// the item's admin path, `{key}` standing for its key (None: `<api>/<key>`)
    pub item: Option<&'static str>,
    /// the edit form's method: PATCH (absent fields kept) or PUT (replaces; creates if missing)
    pub edit_method: &'static str,
    /// the list's search form: each field passed to the list API as a query parameter
    pub search: &'static [Field],
    /// rows per page when the list API pages by key (`limit`, `after` = the last key shown)
    pub page: Option<u32>,
    /// the item's child collections: tables on the item page (a list field of the item, or the
    /// answer of another admin GET), each with its add form and delete buttons when the admin
    /// API has routes for them
    pub children: &'static [Child],
}

/// A form on an item page: POSTs `fields` as JSON to `path` (`{key}` = the item's key).
#[derive(Debug)]
pub struct Action {
    pub title: &'static str,
    pub path: &'static str,
    pub fields: &'static [Field],
}

/// The delete button of each row of a child table, behind a confirmation step.
#[derive(Debug)]
pub struct Remove {
    /// the admin DELETE path: `{key}` = the item's key, `{row}` = the row's `row_key` value
    pub path: &'static str,
    /// the field of a row naming it in `path` (a list of plain values: the first column)
    pub row_key: &'static str,
}

/// Where a table of an item page comes from.
#[derive(Debug)]
pub enum Source {
    /// a field of the item holding a list of objects (left out of the item's own table)
    Field(&'static str),
    /// an admin GET path (`{key}` = the item's key) answering a list of objects
    Api(&'static str),
}

/// A child collection of an item: its table, and its add form and delete buttons, if any.
#[derive(Debug)]
pub struct Child {
    /// names the collection in console paths (`r/<slug>/<key>/<child>`) and element ids
    pub slug: &'static str,
    pub title: &'static str,
    /// one row, as the delete button's label says it ("source network 10.1.0.0/24")
    pub noun: &'static str,
    pub from: Source,
    /// the table's columns; a list of plain values (`["10.1.0.0/24"]`) is one column, the first
    pub columns: &'static [&'static str],
    /// the form adding a row (shown to roles its POST route allows)
    pub add: Option<Action>,
    /// a delete button per row (shown to roles its DELETE route allows)
    pub remove: Option<Remove>,
}

/// The defaults of a child (`..CHILD`).
const CHILD: Child = Child {
    slug: "",
    title: "",
    noun: "",
    from: Source::Field(""),
    columns: &[],
    add: None,
    remove: None,
};

impl Resource {
    /// The admin path of the item whose key, percent-encoded, is `key`.
    pub fn item_path(&self, key: &str) -> String {
        match self.item {
            Some(t) => t.replace("{key}", key),
            None => format!("{}/{key}", self.api),
        }
    }
}

/// The defaults of a descriptor (`..BASE`).
const BASE: Resource = Resource {
    slug: "",
    title: "",
    api: "",
    key: "",
    columns: &[],
    edit: &[],
    create: &[],
    item: None,
    edit_method: "PATCH",
    search: &[],
    page: None,
    children: &[],
};

const STATUS: Kind = Kind::Choice(&["active", "reserved", "disabled", "porting-in"]);

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
        page: Some(100),
        children: &[
            Child {
                slug: "partitions",
                title: "Partitions",
                noun: "partition",
                from: Source::Field("partitions"),
                columns: &[
                    "partition",
                    "priority",
                    "days",
                    "start_time",
                    "end_time",
                    "tz",
                ],
                add: Some(Action {
                    title: "Add a partition",
                    path: "/v1/admin/customers/{key}/partitions",
                    fields: &[
                        f("partition", Kind::Text, "an existing partition"),
                        f("priority", Kind::Int, "lower first (default 10)"),
                        f(
                            "days",
                            Kind::IntList,
                            "ISO weekdays 1 (Mon) to 7 (Sun), e.g. 1, 2, 3; empty = every day",
                        ),
                        f("start_time", Kind::Text, "e.g. 08:00, with an end time"),
                        f("end_time", Kind::Text, "e.g. 18:00"),
                        f("tz", Kind::Text, "IANA time zone; empty = UTC"),
                    ],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/customers/{key}/partitions/{row}",
                    row_key: "partition",
                }),
            },
            Child {
                slug: "source_ips",
                title: "Source IPs",
                noun: "source IP",
                from: Source::Field("source_ips"),
                columns: &["cidr"],
                add: Some(Action {
                    title: "Add a source IP",
                    path: "/v1/admin/customers/{key}/source_ips",
                    fields: &[f(
                        "cidr",
                        Kind::Text,
                        "an address or a network, e.g. 192.0.2.10 or 192.0.2.0/24",
                    )],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/customers/{key}/source_ips/{row}",
                    row_key: "cidr",
                }),
            },
            Child {
                slug: "blocked_prefixes",
                title: "Blocked prefixes",
                noun: "blocked prefix",
                from: Source::Field("blocked_prefixes"),
                columns: &["prefix"],
                add: Some(Action {
                    title: "Block a prefix",
                    path: "/v1/admin/customers/{key}/blocked_prefixes",
                    fields: &[f("prefix", Kind::Text, "E.164 digits without +, e.g. 1900")],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/customers/{key}/blocked_prefixes/{row}",
                    row_key: "prefix",
                }),
            },
            Child {
                slug: "margin_rules",
                title: "Margin rules",
                noun: "margin rule",
                from: Source::Field("margin_rules"),
                columns: &["prefix", "margin_percent", "fixed_fee"],
                ..CHILD
            },
        ],
        ..BASE
    },
    Resource {
        slug: "partitions",
        title: "Partitions",
        api: "/v1/admin/partitions",
        key: "name",
        columns: &["name", "description", "routes"],
        edit: &[],
        create: &[f("name", Kind::Text, ""), f("description", Kind::Text, "")],
        ..BASE
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
        ..BASE
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
        ..BASE
    },
    Resource {
        slug: "trunks",
        title: "Trunks",
        api: "/v1/admin/trunks",
        key: "name",
        columns: &[
            "name",
            "customer",
            "enabled",
            "max_concurrent_calls",
            "max_cps",
            "source_ips",
            "destinations",
        ],
        edit: &[
            f("enabled", Kind::Bool, ""),
            f(
                "max_concurrent_calls",
                Kind::NullableInt,
                "empty = no trunk limit",
            ),
            f("max_cps", Kind::NullableInt, "empty = no trunk limit"),
        ],
        create: &[
            f("name", Kind::Text, "A-Z a-z 0-9 . _ -"),
            f("customer", Kind::Text, "the owning customer's BAN"),
        ],
        children: &[
            Child {
                slug: "source_ips",
                title: "Source networks",
                noun: "source network",
                from: Source::Field("source_ips"),
                columns: &["cidr"],
                add: Some(Action {
                    title: "Add a source network",
                    path: "/v1/admin/trunks/{key}/source_ips",
                    fields: &[f("cidr", Kind::Text, "e.g. 10.1.0.0/24 or one address")],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/trunks/{key}/source_ips/{row}",
                    row_key: "cidr",
                }),
            },
            Child {
                slug: "credentials",
                title: "Digest credentials",
                noun: "credentials",
                from: Source::Field("credentials"),
                columns: &["username", "realm"],
                add: Some(Action {
                    title: "Add digest credentials",
                    path: "/v1/admin/trunks/{key}/credentials",
                    fields: &[
                        f("username", Kind::Text, ""),
                        f("realm", Kind::Text, "e.g. sip.example.net"),
                        f(
                            "password",
                            Kind::Secret,
                            "hashed into the HA1 by the database; never stored or shown",
                        ),
                    ],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/trunks/{key}/credentials/{row}",
                    row_key: "credential",
                }),
            },
            Child {
                slug: "destinations",
                title: "Destinations",
                noun: "destination",
                from: Source::Field("destinations"),
                columns: &[
                    "id",
                    "priority",
                    "weight",
                    "uri",
                    "host",
                    "port",
                    "transport",
                    "enabled",
                ],
                add: Some(Action {
                    title: "Add a destination",
                    path: "/v1/admin/trunks/{key}/destinations",
                    fields: &[
                        f("uri", Kind::Text, "sip: URI, ${number} = the E.164 digits"),
                        f("host", Kind::Text, "or a host (with port and transport)"),
                        f("port", Kind::Int, "default 5060"),
                        f("transport", Kind::Choice(&["udp", "tcp", "tls"]), ""),
                        f("priority", Kind::Int, "lower first (default 10)"),
                        f("weight", Kind::Int, "within a priority (default 1)"),
                    ],
                }),
                remove: Some(Remove {
                    path: "/v1/admin/trunks/{key}/destinations/{row}",
                    row_key: "id",
                }),
            },
        ],
        ..BASE
    },
    Resource {
        slug: "numbers",
        title: "Numbers",
        api: "/v1/admin/numbers",
        key: "number",
        columns: &[
            "number",
            "customer",
            "trunk",
            "status",
            "voice",
            "fax",
            "inbound_rate",
            "cnam",
        ],
        edit: &[
            f(
                "trunk",
                Kind::NullableText,
                "a trunk of the number's customer; empty = none",
            ),
            f("status", STATUS, ""),
            f("voice", Kind::Bool, ""),
            f("fax", Kind::Bool, ""),
            f(
                "destination",
                Kind::NullableText,
                "sip: URI replacing the trunk's destinations; empty = the trunk's",
            ),
            f("inbound_rate", Kind::Decimal, "per minute, e.g. 0.0045"),
            f("monthly_fee", Kind::NullableDecimal, "empty = none"),
            f(
                "cnam",
                Kind::NullableText,
                "display name, up to 15 characters",
            ),
        ],
        create: &[
            f("number", Kind::Text, "E.164 with +"),
            f("customer", Kind::Text, "BAN"),
            f("trunk", Kind::Text, "a trunk of that customer"),
            f("inbound_rate", Kind::Decimal, "per minute"),
        ],
        search: &[
            f("prefix", Kind::Text, "number starts with these digits"),
            f("customer", Kind::Text, "BAN"),
            f("trunk", Kind::Text, ""),
        ],
        page: Some(50),
        ..BASE
    },
    Resource {
        slug: "accounts",
        title: "Credit accounts",
        api: "/v1/admin/customers",
        key: "ban",
        columns: &["ban", "name", "enabled"],
        item: Some("/v1/admin/customers/{key}/account"),
        edit_method: "PUT",
        edit: &[
            f("mode", Kind::Choice(&["postpaid", "prepaid"]), ""),
            f(
                "credit_limit",
                Kind::DecimalE7,
                "postpaid: how far below zero",
            ),
            f("daily_spend_limit", Kind::DecimalE7, "empty = no limit"),
            f("monthly_minutes", Kind::Int, "empty = no cap"),
            f("per_call_cost_cap", Kind::DecimalE7, "empty = no cap"),
            f("at_limit", Kind::Choice(&["reject", "cut"]), ""),
            f(
                "tz",
                Kind::Text,
                "IANA time zone of the daily/monthly rollover",
            ),
            f("blocked", Kind::Bool, ""),
            f("spend_alarm_minutes", Kind::Int, "1-1440, with a threshold"),
            f(
                "spend_alarm_threshold",
                Kind::DecimalE7,
                "spend in the window",
            ),
            f("auto_block", Kind::Bool, "block when the alarm is raised"),
        ],
        children: &[Child {
            slug: "ledger",
            title: "Ledger (newest first)",
            noun: "ledger entry",
            from: Source::Api("/v1/admin/customers/{key}/account/ledger"),
            columns: &[
                "at",
                "kind",
                "amount_e7",
                "balance_after_e7",
                "call_id",
                "billed_s",
                "actor",
                "note",
            ],
            add: Some(Action {
                title: "Top-up or adjustment",
                path: "/v1/admin/customers/{key}/account/ledger",
                fields: &[
                    f("kind", Kind::Choice(&["topup", "adjustment"]), ""),
                    f(
                        "amount",
                        Kind::Decimal,
                        "e.g. 25.00 (an adjustment may be negative)",
                    ),
                    f("note", Kind::Text, "why"),
                ],
            }),
            remove: None,
        }],
        ..BASE
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
            let item = r.item_path("x");
            assert!(crate::admin::role_needed("GET", &item).is_some(), "{item}");
            if !r.edit.is_empty() {
                assert!(
                    crate::admin::role_needed(r.edit_method, &item).is_some(),
                    "{} {item}",
                    r.edit_method
                );
            }
            for (i, c) in r.children.iter().enumerate() {
                if let Source::Api(p) = c.from {
                    let p = p.replace("{key}", "x");
                    assert!(crate::admin::role_needed("GET", &p).is_some(), "{p}");
                }
                if let Some(a) = &c.add {
                    let p = a.path.replace("{key}", "x");
                    assert!(crate::admin::role_needed("POST", &p).is_some(), "{p}");
                }
                if let Some(d) = &c.remove {
                    let p = d.path.replace("{key}", "x").replace("{row}", "y");
                    assert!(crate::admin::role_needed("DELETE", &p).is_some(), "{p}");
                }
                // a child's slug names it in paths and element ids: unique within the item
                assert!(!c.slug.is_empty(), "{}", r.slug);
                assert!(
                    r.children[..i].iter().all(|o| o.slug != c.slug),
                    "{} {}",
                    r.slug,
                    c.slug
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
