"""A phone built from Debian's GStreamer: rtpbin (its rtpsession does RTCP) sending PCMU to
the service and receiving what the service sends, RTCP on its RTP+1 port, optionally SRTP and
SRTCP through srtpenc/srtpdec (libsrtp). It prints its rtpsession's per-source statistics as
one JSON line whenever they change, so a test can read what GStreamer made of the service's
SR/RR, and 'ready' once its sockets are bound. It ends when stdin closes.

usage: gst-phone.py SERVICE_PORT LOCAL_PORT PACKETS [SUITE KEY_B64 SERVICE_KEY_B64]
"""

import base64
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)

SUITES = {
    # suite: (rtp-cipher, rtp-auth, rtcp-cipher, rtcp-auth); SRTCP keeps 80 bits on the _32 suite
    "AES_CM_128_HMAC_SHA1_80": ("aes-128-icm", "hmac-sha1-80", "aes-128-icm", "hmac-sha1-80"),
    "AES_CM_128_HMAC_SHA1_32": ("aes-128-icm", "hmac-sha1-32", "aes-128-icm", "hmac-sha1-80"),
    "AEAD_AES_128_GCM": ("aes-128-gcm", "null", "aes-128-gcm", "null"),
    "AEAD_AES_256_GCM": ("aes-256-gcm", "null", "aes-256-gcm", "null"),
}

service_port = int(sys.argv[1])
local_port = int(sys.argv[2])
packets = int(sys.argv[3])
srtp = sys.argv[4:7] if len(sys.argv) >= 7 else None


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def make(factory, **props):
    e = Gst.ElementFactory.make(factory, None)
    if e is None:
        out({"error": f"no GStreamer element {factory}"})
        sys.exit(2)
    for k, v in props.items():
        e.set_property(k.replace("_", "-"), v)
    return e


pipeline = Gst.Pipeline.new("phone")
rtpbin = make("rtpbin", latency=50)
src = make("audiotestsrc", wave="sine", freq=440.0, samplesperbuffer=160, num_buffers=packets, is_live=True)
caps = make("capsfilter", caps=Gst.Caps.from_string("audio/x-raw,format=S16LE,rate=8000,channels=1"))
enc = make("mulawenc")
pay = make("rtppcmupay", ssrc=0x6A57E11A, pt=0, min_ptime=20000000, max_ptime=20000000)
rtp_in = make("udpsrc", port=local_port, address="127.0.0.1", caps=Gst.Caps.from_string("application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"))
rtcp_in = make("udpsrc", port=local_port + 1, address="127.0.0.1", caps=Gst.Caps.from_string("application/x-rtcp"))
rtp_out = make("udpsink", host="127.0.0.1", port=service_port, sync=False)
rtcp_out = make("udpsink", host="127.0.0.1", port=service_port + 1, sync=False)
rtp_out.set_property("async", False)
rtcp_out.set_property("async", False)

srtpenc = srtpdec = None
if srtp:
    suite, theirs_b64, ours_b64 = srtp
    rc, ra, cc, ca = SUITES[suite]
    # srtpenc protects what this phone sends with its own key; srtpdec reads the service's.
    srtpenc = make("srtpenc", rtp_cipher=rc, rtp_auth=ra, rtcp_cipher=cc, rtcp_auth=ca)
    srtpenc.set_property("key", Gst.Buffer.new_wrapped(base64.b64decode(ours_b64)))
    srtpdec = make("srtpdec")
    service_key = base64.b64decode(theirs_b64)

    def request_key(_dec, ssrc):
        s = Gst.Structure.new_empty("application/x-srtp")
        s.set_value("srtp-key", Gst.Buffer.new_wrapped(service_key))
        s.set_value("srtp-cipher", rc)
        s.set_value("srtp-auth", ra)
        s.set_value("srtcp-cipher", cc)
        s.set_value("srtcp-auth", ca)
        c = Gst.Caps.new_empty()
        c.append_structure(s)
        return c

    srtpdec.connect("request-key", request_key)
    rtp_in.set_property("caps", Gst.Caps.from_string("application/x-srtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0"))
    rtcp_in.set_property("caps", Gst.Caps.from_string("application/x-srtcp"))

elements = [rtpbin, src, caps, enc, pay, rtp_in, rtcp_in, rtp_out, rtcp_out] + ([srtpenc, srtpdec] if srtp else [])
for e in elements:
    pipeline.add(e)
src.link(caps)
caps.link(enc)
enc.link(pay)
pay.get_static_pad("src").link(rtpbin.request_pad_simple("send_rtp_sink_0"))
send_rtp = rtpbin.get_static_pad("send_rtp_src_0")
send_rtcp = rtpbin.request_pad_simple("send_rtcp_src_0")
recv_rtp = rtpbin.request_pad_simple("recv_rtp_sink_0")
recv_rtcp = rtpbin.request_pad_simple("recv_rtcp_sink_0")
# RFC 3550's 5 s minimum report interval, randomised, can leave a 10 s call without a receiver
# report that follows the service's first sender report (no round trip to measure); a smaller
# minimum, as RFC 3550 6.2 allows, gives several within the call.
rtpbin.emit("get-internal-session", 0).set_property("rtcp-min-interval", 1_000_000_000)
if srtp:
    # rtpbin -> srtpenc -> network, network -> srtpdec -> rtpbin, for RTP and RTCP alike.
    send_rtp.link(srtpenc.request_pad_simple("rtp_sink_0"))
    srtpenc.get_static_pad("rtp_src_0").link(rtp_out.get_static_pad("sink"))
    send_rtcp.link(srtpenc.request_pad_simple("rtcp_sink_0"))
    srtpenc.get_static_pad("rtcp_src_0").link(rtcp_out.get_static_pad("sink"))
    rtp_in.get_static_pad("src").link(srtpdec.get_static_pad("rtp_sink"))
    srtpdec.get_static_pad("rtp_src").link(recv_rtp)
    rtcp_in.get_static_pad("src").link(srtpdec.get_static_pad("rtcp_sink"))
    srtpdec.get_static_pad("rtcp_src").link(recv_rtcp)
else:
    send_rtp.link(rtp_out.get_static_pad("sink"))
    send_rtcp.link(rtcp_out.get_static_pad("sink"))
    rtp_in.get_static_pad("src").link(recv_rtp)
    rtcp_in.get_static_pad("src").link(recv_rtcp)


def on_pad(_bin, pad):
    # The service's stream, decoded and dropped: it only has to be received.
    if pad.get_name().startswith("recv_rtp_src"):
        sink = make("fakesink", sync=False)
        pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))


rtpbin.connect("pad-added", on_pad)

# Symmetric RTP and RTCP: each is sent from the socket it is received on.
for s in (rtp_in, rtcp_in):
    s.set_state(Gst.State.READY)
rtp_out.set_property("socket", rtp_in.get_property("used-socket"))
rtcp_out.set_property("socket", rtcp_in.get_property("used-socket"))
rtp_out.set_property("close-socket", False)
rtcp_out.set_property("close-socket", False)

last = None
FIELDS = ("ssrc", "internal", "is-sender", "packets-received", "octets-received", "packets-sent", "octets-sent",
          "have-sr", "sr-packet-count", "sr-octet-count", "sr-ntptime", "have-rb", "rb-round-trip", "rb-fractionlost",
          "rb-packetslost", "rb-exthighestseq", "rb-jitter", "rb-lsr", "rb-dlsr", "received-bye", "sent-rb-packetslost")


def poll():
    global last
    session = rtpbin.emit("get-internal-session", 0)
    if session is None:
        return True
    stats = session.get_property("stats")
    sources = []
    arr = stats.get_value("source-stats")
    for st in arr or []:
        d = {}
        for f in FIELDS:
            if st.has_field(f):
                v = st.get_value(f)
                d[f] = v if isinstance(v, (bool, int, float, str)) else str(v)
        sources.append(d)
    line = json.dumps(sources, sort_keys=True)
    if line != last:
        last = line
        out({"sources": sources})
    return True


loop = GLib.MainLoop()


def on_message(_bus, msg):
    if msg.type == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        out({"error": f"{err.message} {dbg}"})
        loop.quit()


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
pipeline.set_state(Gst.State.PLAYING)
GLib.timeout_add(20, poll)
out({"ready": True})


def wait_stdin():
    sys.stdin.read()
    GLib.idle_add(loop.quit)


threading.Thread(target=wait_stdin, daemon=True).start()
loop.run()
poll()
pipeline.set_state(Gst.State.NULL)
