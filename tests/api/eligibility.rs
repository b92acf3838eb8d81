//! Who may join a segment: the rule's SQL form (`db::members::eligible`, used by every
//! set-based write) held to its Rust form (`Requirements::verdict`, which explains each
//! refusal) on every combination of channel, tenant setting and contact facts.

use std::collections::BTreeSet;

use diesel::prelude::*;
use segments::core::eligibility::{ContactFacts, Requirements, Verdict};
use segments::core::types::Channel;
use segments::db::members::eligible;
use segments::db::schema::contacts;

use crate::harness::spawn_app;

#[actix_web::test]
async fn the_sql_rule_admits_exactly_the_contacts_the_rust_rule_does() {
    let app = spawn_app().await;
    let (tenant_id, _) = app.tenant(serde_json::json!({})).await;
    let mut conn = app.database.connection();
    let mut facts_by_id = Vec::new();
    for bits in 0..8u8 {
        let facts = ContactFacts {
            has_validated_phone: bits & 1 != 0,
            has_email: bits & 2 != 0,
            has_privacy_consent: bits & 4 != 0,
        };
        let id: i64 = diesel::insert_into(contacts::table)
            .values((
                contacts::tenant_id.eq(tenant_id),
                contacts::name.eq(format!("facts {bits}")),
                contacts::phone_e164.eq(facts
                    .has_validated_phone
                    .then(|| format!("+3933300000{bits:02}"))),
                contacts::email.eq(facts.has_email.then(|| format!("c{bits}@example.com"))),
                contacts::privacy_consent.eq(facts.has_privacy_consent),
            ))
            .returning(contacts::id)
            .get_result(&mut conn)
            .unwrap();
        facts_by_id.push((id, facts));
    }
    let (mut checked, mut refusing) = (0, 0);
    for channel in Channel::ALL {
        for consent_required in [false, true] {
            let requirements = Requirements::for_channel(channel, consent_required);
            let admitted: BTreeSet<i64> = contacts::table
                .filter(contacts::tenant_id.eq(tenant_id))
                .filter(eligible(requirements))
                .select(contacts::id)
                .load::<i64>(&mut conn)
                .unwrap()
                .into_iter()
                .collect();
            let expected: BTreeSet<i64> = facts_by_id
                .iter()
                .filter(|(_, facts)| !matches!(requirements.verdict(*facts), Verdict::Rejected(_)))
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(
                admitted, expected,
                "{channel:?}, consent required: {consent_required}"
            );
            checked += 1;
            refusing += usize::from(expected.len() < facts_by_id.len());
        }
    }
    assert_eq!(checked, 6);
    assert!(refusing >= 4, "most cases refuse someone: {refusing}");
}
