"""The generator's original dict path, kept as the reference the fast JSON encoder must match.

``reference_events(world, chunk.columns)`` builds the nested SearchEvent dicts exactly as the
generator did before events were encoded column-wise (``World.encode_events``); ``orjson.dumps`` of
each must give the chunk's JSON lines byte for byte.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from core import contract
from seed_infra.world.generator import _DEVICES, _TIERS, EventColumns, World


def reference_events(world: World, c: EventColumns) -> tuple[list[dict], list[str]]:
    net, n = world.net, c.n
    hexes = c.event_bytes.hex()
    event_ids = [
        f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
        for h in (hexes[32 * i : 32 * i + 32] for i in range(n))
    ]
    sess_ids = c.sess_bytes.hex()
    search_day = world.start_date + dt.timedelta(days=c.day)
    stamp = f"{search_day.isoformat()}T{c.hour:02d}:"
    order = np.argsort(c.offs, kind="stable")

    o_sched, o_dep, o_search = c.o_sched, c.o_dep, c.o_search
    dep_min = net.s_dep_minute[o_sched]
    dur = net.s_duration[o_sched]
    o_route = c.route[o_search]
    dest = net.route_d[o_route]
    org = net.route_o[o_route]
    arr_total = dep_min + dur + world.utc_off[dest, o_dep] - world.utc_off[org, o_dep]
    arr_day = o_dep + arr_total // 1440
    arr_min = arr_total % 1440
    ds, hm = world.date_str, world._hhmm
    letters = [world.buckets[cb][b] for cb, b in zip(c.o_cabin.tolist(), c.bucket.tolist())]
    airline = [net.airline_code[a] for a in net.s_airline[o_sched].tolist()]
    offers_of = np.searchsorted(o_search, np.arange(n + 1)).tolist()
    amount_l = [int(a) if cur == "JPY" else a for a, cur in zip(c.amount.tolist(), c.currency.tolist())]
    uid_l = c.uid.tolist()

    offer_ids: list[str] = [""] * len(o_sched)
    events: list[dict] = []
    for i in order.tolist():
        eid = event_ids[i]
        lo, hi = offers_of[i], offers_of[i + 1]
        offers = []
        for j in range(lo, hi):
            oid = f"{eid}-{j - lo:02d}"
            offer_ids[j] = oid
            offers.append({
                "offer_id": oid,
                "airline": airline[j],
                "flight_number": net.s_number[int(o_sched[j])],
                "departure_time": f"{ds[int(o_dep[j])]}T{hm[int(dep_min[j])]}",
                "arrival_time": f"{ds[int(arr_day[j])]}T{hm[int(arr_min[j])]}",
                "stops": int(net.s_stops[o_sched[j]]),
                "duration_minutes": int(dur[j]),
                "fare_class": letters[j],
                "seats_left": int(c.seats_left[j]),
                "price": {"amount": amount_l[j], "currency": str(c.currency[j])},
            })
        r, d, si, h, uid = int(c.route[i]), int(c.dep[i]), int(c.sess[i]), int(c.home[i]), uid_l[i]
        ev_t = int(c.offs[i])
        events.append({
            "schema_version": contract.SCHEMA_VERSION,
            "event_id": eid,
            "event_time": f"{stamp}{ev_t // 60:02d}:{ev_t % 60:02d}Z",
            "session": {
                "session_id": f"s-{sess_ids[16 * si:16 * si + 16]}",
                "user_id": f"u-{uid:016x}",
                "country": net.country[h],
                "device": _DEVICES[uid % 100],
                "loyalty_tier": _TIERS[(uid >> 8) % 100],
            },
            "query": {
                "origin": net.iata[int(net.route_o[r])],
                "destination": net.iata[int(net.route_d[r])],
                "departure_date": ds[d],
                "return_date": ds[d + int(c.los[i])] if c.rt[i] else None,
                "trip_type": "round_trip" if c.rt[i] else "one_way",
                "cabin": contract.CABINS[int(c.cabin[i])],
                "passengers": {"adults": int(c.adults[i]), "children": int(c.children[i]), "infants": int(c.infants[i])},
            },
            "offers": offers,
        })
    return events, offer_ids
