"""Fixed vocabularies of the synthetic world: categories, items, cities, names, segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES = ("apparel", "beauty", "electronics", "home", "sports", "books", "grocery", "toys")
CITIES = (  # (city, tier)
    ("Shanghai", 1), ("Beijing", 1), ("Shenzhen", 1), ("Guangzhou", 1), ("Hangzhou", 2), ("Chengdu", 2),
    ("Wuhan", 2), ("Nanjing", 2), ("Xiamen", 3), ("Kunming", 3), ("Luoyang", 4), ("Zhuhai", 3),
)  # fmt: skip
FIRST_NAMES = (
    "Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Jun", "Hui", "Xiu", "Tao", "Li", "Na", "Qiang", "Ying", "Bo",
    "Anna", "David", "Maria", "James", "Sofia", "Lucas", "Emma", "Noah", "Olivia", "Mateo", "Chloe",
)  # fmt: skip
LAST_NAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu",
    "Smith", "Garcia", "Muller", "Rossi", "Tanaka", "Kim", "Silva", "Martin", "Novak", "Jensen",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "mail.example.cn", "inbox.example.org", "post.example.net")
SOCIAL_PLATFORMS = ("weibo", "wechat", "douyin", "xiaohongshu", "instagram")
CAMPAIGN_CHANNELS = ("email", "push", "sms", "email", "push", "sms", "email", "ads")


@dataclass(frozen=True)
class Segment:
    """A planted behavioural segment: the generator draws each member's behaviour around these values."""

    name: str
    share: float
    purchase_rate: float  # orders per active day
    session_rate: float  # sessions per active day
    discount_affinity: float  # probability an order line is discounted
    app_share: float  # probability a device is the app
    preferred_hour: int
    churn_prob: float
    campaign_effect: float  # probability a treated send causes an extra order
    favourite_categories: tuple[int, int]
    consent_prob: float


# Purchase rates are those of a frequent-purchase retailer (champions order about once a week), so that a few
# months of history say something about each customer's rate.
SEGMENTS = (
    Segment("champions", 0.15, 0.120, 0.50, 0.05, 0.8, 20, 0.05, 0.04, (2, 0), 0.85),
    Segment("bargain_hunters", 0.25, 0.060, 0.40, 0.70, 0.4, 12, 0.15, 0.20, (6, 3), 0.80),
    Segment("browsers", 0.25, 0.012, 0.70, 0.25, 0.5, 22, 0.20, 0.08, (1, 4), 0.70),
    Segment("family_planners", 0.20, 0.050, 0.25, 0.30, 0.3, 9, 0.10, 0.10, (3, 7), 0.75),
    Segment("drifting", 0.15, 0.020, 0.10, 0.20, 0.5, 15, 0.60, 0.02, (5, 0), 0.60),
)


@dataclass(frozen=True)
class Catalogue:
    item_ids: np.ndarray  # str
    item_category: np.ndarray  # int index into CATEGORIES
    item_price: np.ndarray  # float, 2 decimals: the regular list price
    items_by_category: tuple[np.ndarray, ...]
    seed: int = 0

    def price(self, item: int, day: int) -> float:
        """The list price of `item` on `day`: the regular price, cut by PRICE_DROP_FACTOR in its drop weeks."""
        regular = float(self.item_price[item])
        if on_price_drop(np.array([item]), day // 7, self.seed)[0]:
            return round(regular * PRICE_DROP_FACTOR, 2)
        return regular


PRICE_DROP_SHARE = 0.15  # share of items whose list price is cut in a given week
PRICE_DROP_FACTOR = 0.8


def on_price_drop(items: np.ndarray, week: int, seed: int) -> np.ndarray:
    """Whether each item's list price is cut in `week`: a fixed schedule, a pure function of (item, week, seed)."""
    mixed = (items.astype(np.int64) * 2654435761 + week * 40503 + seed * 97) % 1_000_003
    return (mixed % 1000) < PRICE_DROP_SHARE * 1000


def make_catalogue(seed: int, items_per_category: int = 50) -> Catalogue:
    """The product catalogue: the same for every chunk of users of one world."""
    rng = np.random.default_rng([seed, 7_000_001])
    n = items_per_category * len(CATEGORIES)
    category = np.repeat(np.arange(len(CATEGORIES)), items_per_category)
    base = np.array([35, 25, 180, 60, 45, 15, 8, 20], dtype=float)[category]
    price = np.round(base * rng.lognormal(0.0, 0.45, n), 2) + 0.99
    ids = np.array([f"SKU{i:05d}" for i in range(n)])
    by_cat = tuple(np.flatnonzero(category == c) for c in range(len(CATEGORIES)))
    return Catalogue(ids, category, np.round(price, 2), by_cat, seed)
