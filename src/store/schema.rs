//! Diesel table definitions; mirrors `migrations/*/..._init/up.sql`.

diesel::table! {
    counterparties (id) {
        id -> BigInt,
        inn -> Text,
        name -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    contacts (id) {
        id -> BigInt,
        phone_digits -> Text,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    records (id) {
        id -> BigInt,
        queue -> Text,
        collector -> Text,
        kind -> Text,
        status -> Text,
        title -> Nullable<Text>,
        record_date -> Nullable<Timestamp>,
        description -> Nullable<Text>,
        inn -> Nullable<Text>,
        inn_valid -> Bool,
        phone -> Nullable<Text>,
        phone_digits -> Nullable<Text>,
        email -> Nullable<Text>,
        contact_name -> Nullable<Text>,
        counterparty_id -> Nullable<BigInt>,
        contact_id -> Nullable<BigInt>,
        layout_files -> Text,
        message_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        order_ref -> Nullable<Text>,
        attachment_name -> Nullable<Text>,
        charset -> Text,
        warnings -> Text,
        payload -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        number -> Nullable<Text>,
        request_type -> Nullable<Text>,
        service -> Nullable<Text>,
        result -> Nullable<Text>,
        format -> Nullable<Text>,
    }
}

diesel::table! {
    record_lines (id) {
        id -> BigInt,
        record_id -> BigInt,
        position -> Integer,
        item -> Nullable<Text>,
        machine_code -> Nullable<Text>,
        resolution -> Nullable<Text>,
        material -> Nullable<Text>,
        material_code -> Nullable<Text>,
        width -> Nullable<Double>,
        height -> Nullable<Double>,
        quantity -> Nullable<Double>,
        price -> Nullable<Double>,
        amount -> Nullable<Double>,
        is_service -> Bool,
        extra_work -> Text,
    }
}

diesel::table! {
    tech_cards (id) {
        id -> BigInt,
        record_id -> BigInt,
        line_position -> Integer,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    record_events (id) {
        id -> BigInt,
        record_id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        event -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    quarantine (id) {
        id -> BigInt,
        collector -> Text,
        source_key -> Text,
        message_id -> Nullable<Text>,
        subject -> Nullable<Text>,
        fingerprint -> Text,
        reason -> Text,
        raw -> Binary,
        status -> Text,
        record_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ledger (id) {
        id -> BigInt,
        collector -> Text,
        source_key -> Text,
        message_id -> Nullable<Text>,
        fingerprint -> Text,
        outcome -> Text,
        record_id -> Nullable<BigInt>,
        quarantine_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    record_sources (record_id) {
        record_id -> BigInt,
        raw -> Binary,
    }
}

diesel::joinable!(record_lines -> records (record_id));
diesel::joinable!(record_sources -> records (record_id));
diesel::joinable!(tech_cards -> records (record_id));
diesel::joinable!(record_events -> records (record_id));

diesel::table! {
    collector_state (collector) {
        collector -> Text,
        uidvalidity -> Nullable<BigInt>,
        last_uid -> Nullable<BigInt>,
        last_run_at -> Nullable<Timestamp>,
        last_success_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_report -> Nullable<Text>,
        next_run_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        mode -> Nullable<Text>,
        fallbacks -> Nullable<Text>,
        failed_report -> Nullable<Text>,
        failing_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        record_id -> BigInt,
        rule -> Text,
        channel -> Text,
        recipients -> Text,
        subject -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        server_reply -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(notifications -> records (record_id));

diesel::table! {
    people (id) {
        id -> BigInt,
        name -> Text,
        branch -> Text,
        role -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        enabled -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_queues (user_id, queue) {
        user_id -> BigInt,
        queue -> Text,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        csrf -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        name -> Text,
        scope -> Text,
        target -> Nullable<Text>,
        secret_hash -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    skipped_messages (collector, source_key) {
        collector -> Text,
        source_key -> Text,
        rules -> Text,
        skipped_at -> Timestamp,
    }
}

diesel::joinable!(user_queues -> users (user_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    counterparties,
    contacts,
    records,
    record_lines,
    tech_cards,
    record_events,
    record_sources,
    quarantine,
    ledger,
    collector_state,
    notifications,
    people,
    users,
    user_queues,
    sessions,
    api_tokens,
    skipped_messages,
);

diesel::table! {
    http_intake (id) {
        id -> BigInt,
        collector -> Text,
        token -> Text,
        idempotency_key -> Nullable<Text>,
        body_sha256 -> Text,
        content_type -> Nullable<Text>,
        record_id -> Nullable<BigInt>,
        quarantine_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    http_intake_bodies (collector, body_sha256) {
        collector -> Text,
        body_sha256 -> Text,
        intake_id -> BigInt,
    }
}

diesel::joinable!(http_intake_bodies -> http_intake (intake_id));
diesel::joinable!(http_intake -> quarantine (quarantine_id));
diesel::allow_tables_to_appear_in_same_query!(http_intake, http_intake_bodies, quarantine);

diesel::table! {
    collector_leases (collector) {
        collector -> Text,
        holder -> Text,
        host -> Text,
        pid -> BigInt,
        acquired_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    daemons (holder) {
        holder -> Text,
        host -> Text,
        pid -> BigInt,
        seen_until -> Timestamp,
    }
}
