//! The desktop's side of the ports that the layers above use: the outbox (data-channel
//! messages to participants) and the transports (WebRTC branches and WebSocket feeds).

use tokio::sync::mpsc::UnboundedSender;

use super::Desktop;
use crate::outbox::Outbox;
use crate::transport::{Kind, OpenError, SelfTest, TransportEvent, Transports, Wire};

impl Outbox for Desktop {
    fn viewer_ids(&self) -> Vec<u64> {
        Desktop::viewer_ids(self)
    }
    fn send(&self, viewer: u64, text: &str) -> bool {
        self.send_data(viewer, text)
    }
    fn buffered(&self, viewer: u64) -> Option<u64> {
        self.data_buffered(viewer)
    }
}

impl Transports for Desktop {
    fn open(&self, id: u64, wire: Wire, events: UnboundedSender<TransportEvent>) -> Result<(), OpenError> {
        self.add_viewer(id, wire, events).map_err(|e| OpenError(e.to_string()))
    }
    fn kinds(&self) -> Vec<(Kind, usize)> {
        Desktop::kinds(self)
    }
    fn apply_answer(&self, id: u64, sdp: &str) {
        Desktop::apply_answer(self, id, sdp)
    }
    fn add_ice(&self, id: u64, sdp_mline_index: u32, candidate: &str) {
        Desktop::add_ice(self, id, sdp_mline_index, candidate)
    }
    fn close(&self, id: u64) {
        self.remove_viewer(id)
    }
    fn request_keyframe(&self) {
        Desktop::request_keyframe(self)
    }
    fn control_moved(&self, to: Option<u64>) {
        self.set_leader(to)
    }
    fn self_test(&self, id: u64, test: SelfTest) {
        Desktop::self_test(self, id, test)
    }
}
