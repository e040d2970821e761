"""Stream payload layouts of the core, derived from the config (field names follow SPEC)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

__all__ = ["vector", "query_tag", "token", "group", "key_tag", "weighted_sum", "grouped",
           "weighted_group", "output",
           "value_path_ports", "top_ports", "axi_ports"]


def vector(cfg):
    """d signed w-bit elements; element e in bits [e·w + w-1 : e·w] (SPEC §4)."""
    return data.ArrayLayout(signed(cfg.w), cfg.d)


def query_tag():
    """What travels with a query to its output beat: ``tlast`` and ``tuser``."""
    return data.StructLayout({"last": 1, "user": 1})


def key_tag(cfg):
    """Side band of a vector through the hash: key or query, first key of a window and the
    query's tag (a key's value waits beside the hash, in the core's value queue)."""
    return data.StructLayout({"key": 1, "first": 1, "qtag": query_tag()})


def token(cfg):
    """Input of a value path: a hashed key (with its value when unfolded) or a hashed query.
    A folded value path (G > 1) takes a key's value as G groups on a stream of its own
    (:func:`group`), so no d-wide value travels through the core."""
    fields = {"code": unsigned(cfg.b), "key": 1, "first": 1, "tag": query_tag()}
    if not cfg.folded:
        fields["value"] = vector(cfg)
    return data.StructLayout(fields)


def group(cfg):
    """One group of a folded vector: P lanes, lane l of group g is element gP + l (0 beyond
    d)."""
    return data.ArrayLayout(signed(cfg.w), cfg.lanes)


def weighted_sum(cfg):
    """Output of a value path, input of the divider: num[e] and den of SPEC §3."""
    return data.StructLayout({"num": data.ArrayLayout(signed(cfg.num_width), cfg.d),
                              "den": unsigned(cfg.den_width), "tag": query_tag()})


def grouped(cfg):
    """A folded core passes its weighted sums to the divider one group at a time."""
    return cfg.folded


def weighted_group(cfg):
    """Output of a folded value path, input of its divider: one group of P num[e]
    (group g: elements gP .. gP+P-1, lanes past d carry 0), den, and ``last`` on group G-1,
    with the query's tag."""
    return data.StructLayout({"num": data.ArrayLayout(signed(cfg.num_width), cfg.lanes),
                              "den": unsigned(cfg.den_width), "last": 1,
                              "tag": query_tag()})


def value_path_ports(cfg):
    """The signature members of a value path: tokens in (``i``), weighted sums out (``o``;
    one group per beat when :func:`grouped`) and, when folded, the keys' value groups in
    (``v``: G beats per key, in group order, taken with the groups of the key's token)."""
    ports = {"i": In(stream.Signature(token(cfg))),
             "o": Out(stream.Signature(weighted_group(cfg) if grouped(cfg)
                                       else weighted_sum(cfg)))}
    if cfg.folded:
        ports["v"] = In(stream.Signature(group(cfg)))
    return ports


def output(cfg):
    return data.StructLayout({"data": vector(cfg), "last": 1, "user": 1})


def _vector_field(cfg, name, lsb):
    """A d-element field of a ``tdata`` port starting at bit ``lsb``: element e in bits
    [lsb + e·w + w-1 : lsb + e·w], two's complement (SPEC §4)."""
    d, w = cfg.d, cfg.w
    base = f"{lsb} + " if lsb else ""
    return {"name": name, "lsb": lsb, "width": d * w, "elements": d, "element_width": w,
            "signed": True, "bits": f"[{lsb + d * w - 1}:{lsb}]",
            "element_bits": f"element e = 0..{d - 1} in [{base}{w}*e + {w - 1} : {base}{w}*e]"}


def top_ports(cfg):
    """Every port of the generated top in SPEC §4 order, as the manifest lists them: dicts
    ``{"name", "direction", "width", "role"}``, and for a ``tdata`` port ``"fields"``: the
    vectors it carries, each ``{"name", "lsb", "width", "elements", "element_width",
    "signed", "bits", "element_bits"}`` (:func:`vector` at bit ``lsb``). ``s_kv_tdata``
    carries the key in bits [d·w-1:0] and its value in bits [2·d·w-1:d·w]. A beat transfers
    on a rising edge of ``clk`` with ``tvalid`` and ``tready`` both high."""
    dw = cfg.d * cfg.w

    def port(name, direction, width, role, *fields):
        p = {"name": name, "direction": direction, "width": width, "role": role}
        if fields:
            p["fields"] = list(fields)
        return p

    return [
        port("clk", "input", 1, "clock: every port is sampled at its rising edge"),
        port("rst", "input", 1, "synchronous reset, active high: returns the core to the start "
             "of a window from any state (outputs in flight are discarded)"),
        port("s_kv_tdata", "input", 2 * dw, "key/value channel data: one key and its value",
             _vector_field(cfg, "key", 0), _vector_field(cfg, "value", dw)),
        port("s_kv_tvalid", "input", 1, "key/value channel: the source offers a beat"),
        port("s_kv_tready", "output", 1, "key/value channel: the core takes the beat"),
        port("s_kv_tlast", "input", 1, "key/value channel: the last key of the window"),
        port("s_q_tdata", "input", dw, "query channel data: one query",
             _vector_field(cfg, "query", 0)),
        port("s_q_tvalid", "input", 1, "query channel: the source offers a beat"),
        port("s_q_tready", "output", 1, "query channel: the core takes the beat"),
        port("s_q_tlast", "input", 1, "query channel: the last query of the window"),
        port("m_out_tdata", "output", dw, "output channel data: the output of one query, in "
             "query order", _vector_field(cfg, "out", 0)),
        port("m_out_tvalid", "output", 1, "output channel: the core offers a beat"),
        port("m_out_tready", "input", 1, "output channel: the sink takes the beat"),
        port("m_out_tlast", "output", 1, "output channel: a copy of the query's tlast"),
        port("m_out_tuser", "output", 1, "output channel: 1 when this window had more than N "
             "keys and only the first N were used"),
    ]


def axi_ports(cfg):
    """The flat AXI4-Stream ports of SPEC §4 as wiring members (:func:`top_ports` without
    ``clk``/``rst``, which come from the ``sync`` domain): every generated top, the core's
    and the baselines', has exactly these."""
    return {p["name"]: (In if p["direction"] == "input" else Out)(p["width"])
            for p in top_ports(cfg) if p["name"] not in ("clk", "rst")}
