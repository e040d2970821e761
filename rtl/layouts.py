"""Stream payload layouts of the core, derived from the config (field names follow SPEC)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

__all__ = ["vector", "query_tag", "token", "key_tag", "weighted_sum", "output", "axi_ports"]


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
    """Input of a value path: a hashed key (with its value) or a hashed query."""
    return data.StructLayout({"code": unsigned(cfg.b), "key": 1, "first": 1,
                              "value": vector(cfg), "tag": query_tag()})


def weighted_sum(cfg):
    """Output of a value path, input of the divider: num[e] and den of SPEC §3."""
    return data.StructLayout({"num": data.ArrayLayout(signed(cfg.num_width), cfg.d),
                              "den": unsigned(cfg.den_width), "tag": query_tag()})


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
