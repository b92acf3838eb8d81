//! The shared vocabulary: channels, segment kinds and attribute types, each with its one
//! spelling on the wire and in the database.

use serde::{Deserialize, Serialize};

/// The messaging channel a segment or campaign is for. It decides which contacts may
/// join (see [`crate::core::eligibility`]) and which address an audience uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Whatsapp,
    Sms,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Whatsapp, Channel::Sms, Channel::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }

    /// The channel stored as `text`; the database's CHECK allows only these three.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
    }

    /// Whether the address messages go to is the phone (else the email).
    pub fn uses_phone(self) -> bool {
        matches!(self, Self::Whatsapp | Self::Sms)
    }
}

/// How a segment's members are chosen; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    /// Members are added and removed explicitly.
    Static,
    /// Members are the contacts a filter matches.
    Dynamic,
}

impl SegmentKind {
    pub const ALL: [SegmentKind; 2] = [SegmentKind::Static, SegmentKind::Dynamic];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A custom attribute's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    Text,
    Number,
    Boolean,
    Date,
}

impl AttributeType {
    pub const ALL: [AttributeType; 4] = [
        AttributeType::Text,
        AttributeType::Number,
        AttributeType::Boolean,
        AttributeType::Date,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            let json = serde_json::to_value(channel).unwrap();
            assert_eq!(json, channel.as_str());
        }
        for kind in SegmentKind::ALL {
            assert_eq!(SegmentKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for kind in AttributeType::ALL {
            assert_eq!(AttributeType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(Channel::parse("fax"), None);
    }
}
