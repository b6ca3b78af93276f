//! Conditional (personalised) menus: a menu shown to the followers a [`MatchRule`] selects
//! (a tag, a client platform, a region, a language) instead of the default menu. WeChat needs
//! a default menu first (`65303`).

use serde::{Deserialize, Serialize, Serializer};
use wx_core::{Ack, InvalidInput, Result, check_arg, lenient};

use super::{Button, ButtonInfo, check_buttons, list_or_array};
use crate::endpoint::Endpoint;
use crate::request::Request;

/// Longest value of a text match field (country, province, city, language), in bytes.
const MAX_RULE_FIELD_BYTES: usize = 64;

/// The client platform of a [`MatchRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientPlatform {
    /// `1`: iOS.
    Ios,
    /// `2`: Android.
    Android,
    /// `3`: others.
    Others,
}

impl ClientPlatform {
    /// WeChat's code (`"1"`, `"2"`, `"3"`).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            ClientPlatform::Ios => "1",
            ClientPlatform::Android => "2",
            ClientPlatform::Others => "3",
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(ClientPlatform::Ios),
            2 => Some(ClientPlatform::Android),
            3 => Some(ClientPlatform::Others),
            _ => None,
        }
    }
}

/// Who sees a conditional menu. At least one field must be set; a city needs its province and a
/// province its country (WeChat's `65310` / `65311`). (WeChat's `sex` rule is not offered: it
/// has reported no user's sex since 2021.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MatchRule {
    /// Followers carrying this tag.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "id_as_string",
        deserialize_with = "lenient::opt_u64"
    )]
    pub tag_id: Option<u64>,
    /// Followers on this platform.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "platform_code",
        deserialize_with = "platform_of_code"
    )]
    pub client_platform_type: Option<ClientPlatform>,
    /// Country, as WeChat names it (`中国`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub country: Option<String>,
    /// Province (`广东`); needs `country`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub province: Option<String>,
    /// City (`广州`); needs `province`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub city: Option<String>,
    /// The client's language (`zh_CN`, `en`...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_string"
    )]
    pub language: Option<String>,
}

// `serialize_with` hands the field by reference.
#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn id_as_string<S: Serializer>(id: &Option<u64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(&id.to_string()),
        None => s.serialize_none(),
    }
}

#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn platform_code<S: Serializer>(
    p: &Option<ClientPlatform>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.code()),
        None => s.serialize_none(),
    }
}

fn platform_of_code<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<ClientPlatform>, D::Error> {
    Ok(lenient::opt_u64(d)?.and_then(ClientPlatform::from_code))
}

impl MatchRule {
    /// Followers carrying tag `tag_id`.
    #[must_use]
    pub fn tag(tag_id: u64) -> Self {
        MatchRule {
            tag_id: Some(tag_id),
            ..MatchRule::default()
        }
    }

    /// Followers on `platform`.
    #[must_use]
    pub fn platform(platform: ClientPlatform) -> Self {
        MatchRule {
            client_platform_type: Some(platform),
            ..MatchRule::default()
        }
    }

    /// Also requires the client platform.
    #[must_use]
    pub fn and_platform(mut self, platform: ClientPlatform) -> Self {
        self.client_platform_type = Some(platform);
        self
    }

    /// Also requires the region (country, then optionally province and city).
    #[must_use]
    pub fn and_region(
        mut self,
        country: impl Into<String>,
        province: Option<String>,
        city: Option<String>,
    ) -> Self {
        self.country = Some(country.into());
        self.province = province;
        self.city = city;
        self
    }

    /// Also requires the client language.
    #[must_use]
    pub fn and_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    fn check(&self) -> Result<()> {
        let texts = [
            ("country", &self.country),
            ("province", &self.province),
            ("city", &self.city),
            ("language", &self.language),
        ];
        for (arg, value) in texts {
            if let Some(v) = value {
                check_arg(arg, v, MAX_RULE_FIELD_BYTES)?;
            }
        }
        if self.tag_id.is_none()
            && self.client_platform_type.is_none()
            && texts.iter().all(|(_, v)| v.is_none())
        {
            return Err(InvalidInput::new("matchrule", "must set at least one field").into());
        }
        if self.city.is_some() && self.province.is_none() {
            return Err(InvalidInput::new("matchrule", "a city needs its province").into());
        }
        if self.province.is_some() && self.country.is_none() {
            return Err(InvalidInput::new("matchrule", "a province needs its country").into());
        }
        Ok(())
    }
}

/// A conditional menu as `menu/get` reports it.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct ConditionalMenu {
    /// The top-level buttons.
    #[serde(default, deserialize_with = "list_or_array")]
    pub button: Vec<ButtonInfo>,
    /// Who sees it.
    #[serde(default)]
    pub matchrule: MatchRule,
    /// Its id (for [`DelConditional`]).
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub menuid: Option<u64>,
}

/// `POST /cgi-bin/menu/addconditional`: adds a conditional menu; the answer carries its id.
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct AddConditional {
    button: Vec<Button>,
    matchrule: MatchRule,
}

impl AddConditional {
    /// A menu of `buttons` (1 to 3) shown to the followers `rule` selects.
    pub fn new(buttons: impl IntoIterator<Item = Button>, rule: MatchRule) -> Self {
        AddConditional {
            button: buttons.into_iter().collect(),
            matchrule: rule,
        }
    }
}

/// The answer of `menu/addconditional`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct MenuId {
    /// The new menu's id.
    #[serde(deserialize_with = "lenient::uint")]
    pub menuid: u64,
}

impl Request for AddConditional {
    type Response = MenuId;
    fn endpoint(&self) -> Result<Endpoint> {
        check_buttons(&self.button)?;
        self.matchrule.check()?;
        Ok(Endpoint::post_json("/cgi-bin/menu/addconditional", self)?.with_base_token())
    }
}

/// `POST /cgi-bin/menu/delconditional`: deletes a conditional menu.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct DelConditional {
    menuid: u64,
}

impl DelConditional {
    /// Deletes conditional menu `menuid`.
    pub fn new(menuid: u64) -> Self {
        DelConditional { menuid }
    }
}

#[derive(Serialize)]
struct MenuIdBody {
    menuid: String,
}

impl Request for DelConditional {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        let body = MenuIdBody {
            menuid: self.menuid.to_string(),
        };
        Ok(Endpoint::post_json("/cgi-bin/menu/delconditional", &body)?.with_base_token())
    }
}

/// `POST /cgi-bin/menu/trymatch`: the menu a user would see (by openid or WeChat id).
#[derive(Clone, Debug)]
#[must_use]
pub struct TryMatch {
    user_id: String,
}

impl TryMatch {
    /// The menu `user_id` (an openid or a WeChat id) would see.
    pub fn new(user_id: impl Into<String>) -> Self {
        TryMatch {
            user_id: user_id.into(),
        }
    }
}

#[derive(Serialize)]
struct TryMatchBody<'a> {
    user_id: &'a str,
}

/// The answer of `menu/trymatch`.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct MatchedMenu {
    /// The top-level buttons the user sees.
    #[serde(default, deserialize_with = "list_or_array")]
    pub button: Vec<ButtonInfo>,
}

impl Request for TryMatch {
    type Response = MatchedMenu;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("user_id", &self.user_id, crate::oauth::MAX_OPENID_LEN)?;
        let body = TryMatchBody {
            user_id: &self.user_id,
        };
        Ok(Endpoint::post_json("/cgi-bin/menu/trymatch", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::menu::Item;
    use crate::user::tests::{body, refused};

    #[test]
    fn addconditional_sends_buttons_and_the_rule_with_string_codes() {
        let rule = MatchRule::tag(2).and_platform(ClientPlatform::Android);
        let ep = AddConditional::new([Item::click("会员", "VIP").into()], rule.clone())
            .endpoint()
            .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/menu/addconditional");
        assert!(!ep.is_idempotent());
        assert_eq!(
            body(&ep),
            json!({"button": [{"type": "click", "name": "会员", "key": "VIP"}],
                   "matchrule": {"tag_id": "2", "client_platform_type": "2"}})
        );
        let back: MatchRule =
            serde_json::from_value(body(&ep)["matchrule"].clone()).expect("decodes back");
        assert_eq!(back, rule);
    }

    #[test]
    fn rules_need_a_field_and_regions_nest() {
        let b = || [Item::click("b", "k").into()];
        assert_eq!(
            refused(&AddConditional::new(b(), MatchRule::default())).0,
            "matchrule"
        );
        let city_only = MatchRule {
            city: Some("广州".into()),
            ..MatchRule::default()
        };
        assert_eq!(refused(&AddConditional::new(b(), city_only)).0, "matchrule");
        let region =
            MatchRule::default().and_region("中国", Some("广东".into()), Some("广州".into()));
        let _ = AddConditional::new(b(), region)
            .endpoint()
            .expect("nested region");
        assert_eq!(
            refused(&AddConditional::new([], MatchRule::tag(2))).0,
            "button"
        );
    }

    #[test]
    fn delconditional_and_trymatch() {
        let ep = DelConditional::new(208_379_533).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/menu/delconditional");
        assert_eq!(body(&ep), json!({"menuid": "208379533"}));
        let ep = TryMatch::new("weixin").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/menu/trymatch");
        assert_eq!(body(&ep), json!({"user_id": "weixin"}));
        assert_eq!(refused(&TryMatch::new("")).0, "user_id");
        let id: MenuId = serde_json::from_value(json!({"menuid": "208379533"})).expect("decodes");
        assert_eq!(id.menuid, 208_379_533);
    }
}
