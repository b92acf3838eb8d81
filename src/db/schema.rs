// The tables as Diesel sees them; kept in step with migrations/ by hand or with
// `diesel print-schema` (which would type `text[]` as nullable elements).

diesel::table! {
    tenants (id) {
        id -> Int8,
        name -> Text,
        endpoint_limit -> Nullable<Int8>,
        default_region -> Nullable<Text>,
        require_privacy_consent -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        tenant_id -> Int8,
        key_hash -> Bytea,
        created_at -> Timestamptz,
        prefix -> Nullable<Text>,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    contacts (tenant_id, id) {
        tenant_id -> Int8,
        id -> Int8,
        external_id -> Nullable<Text>,
        name -> Text,
        phone -> Nullable<Text>,
        phone_e164 -> Nullable<Text>,
        phone_country -> Nullable<Text>,
        email -> Nullable<Text>,
        attributes -> Jsonb,
        tags -> Array<Text>,
        opted_out -> Bool,
        privacy_consent -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    attribute_definitions (tenant_id, key) {
        tenant_id -> Int8,
        key -> Text,
        label -> Text,
        #[sql_name = "type"]
        value_type -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    attribute_versions (tenant_id) {
        tenant_id -> Int8,
        version -> Int8,
    }
}

diesel::table! {
    segments (tenant_id, id) {
        tenant_id -> Int8,
        id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        kind -> Text,
        channel -> Text,
        filter -> Nullable<Jsonb>,
        recipients -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        recipients_computed_at -> Nullable<Timestamptz>,
        depth -> Int2,
        conditions -> Int2,
        dated -> Bool,
        date_relative -> Bool,
        evaluated_on -> Nullable<Date>,
    }
}

diesel::table! {
    segment_references (tenant_id, segment_id, referenced_id) {
        tenant_id -> Int8,
        segment_id -> Int8,
        referenced_id -> Int8,
    }
}

diesel::table! {
    filter_attributes (tenant_id, segment_id, attribute_key) {
        tenant_id -> Int8,
        segment_id -> Int8,
        attribute_key -> Text,
    }
}

diesel::table! {
    segment_members (tenant_id, segment_id, contact_id) {
        tenant_id -> Int8,
        segment_id -> Int8,
        contact_id -> Int8,
        added_at -> Timestamptz,
        import_id -> Nullable<Int8>,
    }
}

diesel::table! {
    campaigns (tenant_id, id) {
        tenant_id -> Int8,
        id -> Int8,
        name -> Text,
        channel -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sends (tenant_id, id) {
        tenant_id -> Int8,
        id -> Int8,
        campaign_id -> Int8,
        channel -> Text,
        created_at -> Timestamptz,
        created_on -> Date,
        total_unique -> Int8,
        by_exclusion -> Int8,
        opted_out -> Int8,
        no_consent -> Int8,
        no_address -> Int8,
        expired_at -> Nullable<Timestamptz>,
        final_progress -> Nullable<Jsonb>,
    }
}

diesel::table! {
    campaign_segments (tenant_id, campaign_id, segment_id) {
        tenant_id -> Int8,
        campaign_id -> Int8,
        segment_id -> Int8,
        excluded -> Bool,
        position -> Int4,
    }
}

diesel::table! {
    imports (tenant_id, id) {
        tenant_id -> Int8,
        id -> Int8,
        segment_id -> Int8,
        status -> Text,
        bytes_total -> Int8,
        bytes_read -> Int8,
        rows_read -> Int8,
        report -> Nullable<Jsonb>,
        error -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    api_keys,
    contacts,
    attribute_definitions,
    attribute_versions,
    segments,
    segment_members,
    campaigns,
    campaign_segments,
    sends,
    imports,
    segment_references,
    filter_attributes,
);
