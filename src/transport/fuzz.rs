//! The transports' decoders of outside input, one call each, for the fuzz targets
//! (`crate::fuzzing`). Each runs the decoder the handler runs and returns what the hub would
//! answer or take, so that rendering is exercised too.

use super::ws_frames::{self, Frame};
use super::{agui, chatkit, wire};
use crate::config::DEFAULT_MAX_TEXT_CHARS;

/// The text of a `/v1/ws` client message through [`ws_frames::parse`], the checks the frame
/// handler makes before any `Hub` call: the error frame it would send, the `pong`, or the
/// frame it would act on.
pub(crate) fn ws_client_frame(text: &str) -> String {
    let (echo, frame) = ws_frames::parse(text, DEFAULT_MAX_TEXT_CHARS);
    let bytes = match frame {
        Ok(Frame::Ping) => wire::reply_frame("pong", &echo.reply_ref, None),
        Ok(frame) => return format!("{frame:?}"),
        Err(e) => wire::error_frame(&e, &echo.reply_ref, echo.session.as_deref()),
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A `POST /chatkit` body through the ChatKit request decoder.
pub(crate) fn chatkit_request(body: &[u8]) -> String {
    chatkit::decode(body)
}

/// A `POST /agui` body through the AG-UI `RunAgentInput` decoder.
pub(crate) fn agui_input(body: &[u8]) -> String {
    agui::decode(body)
}
