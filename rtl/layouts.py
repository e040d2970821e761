"""Stream payload layouts of the core, derived from the config (field names follow SPEC)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

__all__ = ["vector", "query_tag", "token", "group", "key_tag", "weighted_sum", "grouped",
           "weighted_group", "output",
           "value_path_ports", "axi_ports"]


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
    """A folded linear core passes its weighted sums to the divider one group at a time."""
    return cfg.folded and cfg.mode == "linear"


def weighted_group(cfg):
    """Output of a folded linear value path, input of its divider: one group of P num[e]
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


def axi_ports(cfg):
    """The flat AXI4-Stream ports of SPEC §4 as wiring members (``clk``/``rst`` come from the
    ``sync`` domain): every generated top, the core's and the baselines', has exactly these."""
    dw = cfg.d * cfg.w
    return {
        "s_kv_tdata": In(2 * dw), "s_kv_tvalid": In(1), "s_kv_tready": Out(1),
        "s_kv_tlast": In(1),
        "s_q_tdata": In(dw), "s_q_tvalid": In(1), "s_q_tready": Out(1), "s_q_tlast": In(1),
        "m_out_tdata": Out(dw), "m_out_tvalid": Out(1), "m_out_tready": In(1),
        "m_out_tlast": Out(1), "m_out_tuser": Out(1),
    }
