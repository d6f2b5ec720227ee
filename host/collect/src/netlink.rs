//! A blocking rtnetlink dump: send one `NLM_F_DUMP` request on a fresh
//! NETLINK_ROUTE socket (opened in the calling thread's netns) and gather the
//! answers until `NLMSG_DONE`.

use anyhow::{Context, Result, bail};
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// An open rtnetlink socket bound to the netns it was created in.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).context("opening a NETLINK_ROUTE socket")?;
        socket.bind_auto().context("binding the netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("connecting the netlink socket")?;
        Ok(Self {
            socket,
            seq: 0,
            buf: vec![0; 1 << 20],
        })
    }

    /// Dump every object the request asks for.
    pub fn dump(&mut self, request: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .context("sending a netlink dump request")?;

        let mut answers = Vec::new();
        loop {
            let size = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .context("reading a netlink answer")?;
            let mut offset = 0;
            while offset < size {
                let msg =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..size])
                        .context("decoding a netlink answer")?;
                let len = msg.header.length as usize;
                let seq = msg.header.sequence_number;
                match msg.payload {
                    NetlinkPayload::Done(_) if seq == self.seq => return Ok(answers),
                    NetlinkPayload::Error(e) if seq == self.seq => {
                        if let Some(code) = e.code {
                            bail!(
                                "netlink dump failed: {}",
                                std::io::Error::from_raw_os_error(-code.get())
                            );
                        }
                    }
                    NetlinkPayload::InnerMessage(m) if seq == self.seq => answers.push(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}
