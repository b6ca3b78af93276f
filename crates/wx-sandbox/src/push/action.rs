//! What a simulated user does in WeChat that makes WeChat push to the app.

/// Something a simulated user does: each becomes the push WeChat sends (see
/// [`Sandbox::act`](crate::Sandbox::act)).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum UserAction {
    /// Sends a text message (`MsgType` `text`).
    Text(String),
    /// Sends a picture (`MsgType` `image`, with a fresh `MediaId`).
    Image {
        /// `PicUrl`.
        pic_url: String,
    },
    /// Sends a location (`MsgType` `location`).
    Location {
        /// `Location_X`.
        latitude: f64,
        /// `Location_Y`.
        longitude: f64,
        /// `Scale` (map zoom).
        scale: u32,
        /// `Label` (the place's name).
        label: String,
    },
    /// Follows the account (from a search: event `subscribe`, no `EventKey`).
    Follow,
    /// Stops following (event `unsubscribe`).
    Unfollow,
    /// Scans a parametric QR code: `subscribe` with `EventKey` `qrscene_<scene>` for a
    /// non-follower (who then follows), `SCAN` with the bare scene for a follower; both with
    /// the `Ticket`.
    ScanQr {
        /// The scene (`scene_id` or `scene_str` of the QR code).
        scene: String,
        /// The QR code's ticket.
        ticket: String,
    },
    /// Clicks a menu button of type `click` (event `CLICK`, `EventKey` = the key).
    ClickMenu(String),
    /// Clicks a menu button of type `view` (event `VIEW`, `EventKey` = the URL).
    ViewMenu(String),
}

impl UserAction {
    /// [`UserAction::Text`].
    #[must_use]
    pub fn text(content: impl Into<String>) -> Self {
        UserAction::Text(content.into())
    }

    /// [`UserAction::Image`].
    #[must_use]
    pub fn image(pic_url: impl Into<String>) -> Self {
        UserAction::Image {
            pic_url: pic_url.into(),
        }
    }

    /// [`UserAction::Location`].
    #[must_use]
    pub fn location(latitude: f64, longitude: f64, scale: u32, label: impl Into<String>) -> Self {
        UserAction::Location {
            latitude,
            longitude,
            scale,
            label: label.into(),
        }
    }

    /// [`UserAction::ScanQr`].
    #[must_use]
    pub fn scan(scene: impl Into<String>, ticket: impl Into<String>) -> Self {
        UserAction::ScanQr {
            scene: scene.into(),
            ticket: ticket.into(),
        }
    }

    /// [`UserAction::ClickMenu`].
    #[must_use]
    pub fn click(key: impl Into<String>) -> Self {
        UserAction::ClickMenu(key.into())
    }
}
