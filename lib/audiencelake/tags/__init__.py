"""Declarative tag engine: conf/tags.yaml -> gold.user_profile, gold.user_tags, gold.tag_catalog."""
