"""Writes the worked examples' export files (README, "Your own data"), shaped like what shops export; seeded, so
running it again gives the same bytes. `python tests/data/shops/make_examples.py`.

- online_retail.csv: invoice lines shaped like the UCI Online Retail II file (Invoice, StockCode, Description,
  Quantity, InvoiceDate, Price, Customer ID, Country): cancellations are invoices prefixed C with negative
  quantities, some lines have no customer (guests), descriptions may hold commas, one wholesale line of 80,995 units.
- customers.csv: the same shop's customer export, shaped like a Shopify customer export (Customer ID, First Name,
  Last Name, Email, Accepts Email Marketing, Default Address City, Phone, Accepts SMS Marketing, Created At).
- web_events.jsonl.gz: a web analytics export shaped like a flattened GA4 export (event_timestamp in microseconds,
  event_name, user_pseudo_id, user_id on logins, platform, page_location, item_id, item_category, search_term),
  with GA's own scroll events, which the lake does not model.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
CATEGORIES = ["apparel", "beauty", "electronics", "home", "sports", "books", "grocery", "toys"]


def retail(rng: random.Random) -> list[str]:
    items = [(f"{20000 + i}" + ("" if i % 5 else "B"), f"ITEM {i}" + (", SET OF 3" if i % 7 == 0 else ""),
              rng.choice([0.85, 1.25, 1.65, 2.1, 2.95, 4.95, 7.95, 12.75])) for i in range(80)]  # fmt: skip
    start, end = dt.datetime(2010, 1, 4), dt.datetime(2011, 12, 9)
    span = (end - start).days
    rows, inv, customers = [], 536000, []
    for c in range(220):
        cust = str(12346 + c)
        customers.append(cust)
        country = rng.choice(["United Kingdom"] * 8 + ["France", "Germany", "EIRE"])
        rate = rng.gammavariate(1.2, 1 / 40)  # purchases per day
        day, alive = rng.randrange(0, span - 30), True
        while day < span and alive:
            inv += 1
            ts = start + dt.timedelta(days=day, hours=rng.randrange(8, 18), minutes=rng.randrange(60))
            lines = [(rng.choice(items), rng.choice([1, 2, 3, 4, 6, 12, 12, 24])) for _ in range(rng.randint(1, 6))]
            for (code, desc, price), q in lines:
                rows.append((str(inv), code, desc, q, f"{ts:%Y-%m-%d %H:%M:%S}", f"{price:.2f}", cust, country))
            if rng.random() < 0.04:  # a cancellation of the first line a few days later
                inv += 1
                (code, desc, price), q = lines[0]
                later = ts + dt.timedelta(days=rng.randrange(1, 5))
                if later < end:
                    rows.append((f"C{inv}", code, desc, -q, f"{later:%Y-%m-%d %H:%M:%S}", f"{price:.2f}", cust,
                                 country))  # fmt: skip
            alive = rng.random() > 0.04
            day += max(1, int(rng.expovariate(rate)))
    for _ in range(60):  # guests: no customer id
        inv += 1
        ts = start + dt.timedelta(days=rng.randrange(span), hours=10)
        code, desc, price = rng.choice(items)
        rows.append((str(inv), code, desc, 1, f"{ts:%Y-%m-%d %H:%M:%S}", f"{price:.2f}", "", "United Kingdom"))
    rows.append((str(inv + 1), "23843", "PAPER CRAFT , LITTLE BIRDIE", 80995, "2011-12-09 09:15:00", "2.08", "16446",
                 "United Kingdom"))  # fmt: skip
    rows.sort(key=lambda r: (r[4], r[0]))
    with open(HERE / "online_retail.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID",
                      "Country"])  # fmt: skip
        out.writerows(rows)
    return customers


def shop_customers(rng: random.Random, customers: list[str]) -> None:
    cities = ["London", "Leeds", "Paris", "Berlin", "Dublin", "Bristol"]
    with open(HERE / "customers.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
                      "Default Address City", "Phone", "Accepts SMS Marketing", "Created At"])  # fmt: skip
        for i, cust in enumerate(customers):
            created = dt.date(2009, 6, 1) + dt.timedelta(days=rng.randrange(500))
            out.writerow([cust, f"Name{i}", f"Family{i}", f"customer{cust}@example.com",
                          rng.choice(["yes", "yes", "no"]), rng.choice(cities), f"+44 7700 9{i:05d}",
                          rng.choice(["yes", "no", "no"]), f"{created:%Y-%m-%d}"])  # fmt: skip


def web_events(rng: random.Random) -> None:
    items = [(f"SKU{i:03d}", CATEGORIES[i % len(CATEGORIES)]) for i in range(48)]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    events = []
    for v in range(120):
        visitor = f"{rng.randrange(10**9)}.{1700000000 + v}"
        user = f"U{v:04d}" if v % 3 == 0 else None  # a third log in
        taste = rng.sample(CATEGORIES, 2)
        platform = rng.choice(["WEB", "WEB", "ANDROID", "IOS"])
        day = rng.randrange(0, 30)
        while day < 91:
            ts = start + dt.timedelta(days=day, hours=rng.randrange(7, 23), minutes=rng.randrange(60))
            session = [("page_view", None)]
            if user and rng.random() < 0.5:
                session.append(("login", None))
            for _ in range(rng.randint(1, 6)):
                pool = [it for it in items if it[1] in taste] if rng.random() < 0.8 else items
                session.append((rng.choice(["view_item", "view_item", "add_to_cart", "search", "scroll"]),
                                rng.choice(pool)))  # fmt: skip
            for name, item in session:
                ts += dt.timedelta(seconds=rng.randrange(5, 120))
                events.append({
                    "event_timestamp": str(int(ts.timestamp() * 1_000_000) + rng.randrange(1000)),
                    "event_name": name, "user_pseudo_id": visitor,
                    "user_id": user if name == "login" else None, "platform": platform,
                    "page_location": f"https://shop.example.com/{'p/' + item[0] if item else ''}",
                    "item_id": item[0] if item and name in ("view_item", "add_to_cart") else None,
                    "item_category": item[1] if item and name in ("view_item", "add_to_cart") else None,
                    "search_term": item[1] if item and name == "search" else None,
                })  # fmt: skip
            day += max(1, int(rng.expovariate(1 / 9)))
    events.sort(key=lambda e: e["event_timestamp"])
    with open(HERE / "web_events.jsonl.gz", "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as f:
        f.write("".join(json.dumps(e) + "\n" for e in events).encode())


if __name__ == "__main__":
    rng = random.Random(7)
    shop_customers(rng, retail(rng))
    web_events(rng)
