"""The experiment spaces of `bench.decisions`: three shapes of answer, on the simulated endpoint.

The simulated model (promptlooper_tui/simulated) mentions each keyword of the question with a
probability set by its model's tier (small 0.5, medium 0.72, large 0.9), less up to 0.15 x
temperature at random per request, so a config's quality falls on average by 0.075 per unit of
temperature; it writes as many sentences as the prompt asks for ("in one sentence" 1, "in two
sentences" 2, "in three sentences" 3, "in detail" or "step by step" 6, else 4) with at most 3
keywords a sentence. Each item asks about 6-12 keywords, so a one-sentence answer can name at
most 3 of them, and a four-sentence one all. The keyword scorer scores the share of the item's
keywords the answer names (and that it has no "As an AI" disclaimer); the length scorer, where
used, scores 1 up to 40 tokens and falls linearly to 0 at 80.

Nothing here is tuned to the strategies: the shapes are those a user meets (one prompt and
model clearly best; several equally good; a numeric knob with a sweet spot), and the bench
prints how noisy a config's per-item scores are, which is what makes a decision hard.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

#: Nouns the simulated model reads as keywords (4+ letters or capitalised, no stopwords).
_VOCABULARY_TEXT = """
    Vault Terraform Kafka Postgres Redis Nginx Docker Kubernetes Ansible Grafana Prometheus
    Jenkins Gitlab Sentry Elastic Kibana Consul Nomad Istio Envoy Helm Argo Celery Django Flask
    Spring Rails Laravel Webpack Babel Jest Cypress Selenium Airflow Spark Hadoop Flink Trino
    Druid Cassandra Mongo Neo4j Sqlite Mysql Mariadb Oracle Kerberos Ldap Okta Auth0 Stripe
    Twilio Sendgrid Mailgun Cloudflare Fastly Akamai Varnish Haproxy Traefik Caddy Certbot
    Letsencrypt Openssl Wireguard Openvpn Tailscale Zookeeper Etcd Minio Ceph Gluster Longhorn
    Velero Restic Borg Rsync Cron Systemd Journald Rsyslog Fluentd Logstash Vector Jaeger Zipkin
    """
_VOCABULARY = _VOCABULARY_TEXT.split()
KEYWORDS_PER_ITEM = (6, 12)
#: The length scorer of the `inside` space: full marks up to this many tokens.
LENGTH_LIMIT = 40


def dataset(items: int, seed: str) -> list[dict[str, Any]]:
    """`items` questions about 6-12 distinct keywords each (seeded), the keywords as the item's
    `keywords`, the words the keyword scorer looks for."""
    rng = random.Random(f"decisions-dataset:{seed}")
    rows = []
    for _ in range(items):
        words = rng.sample(_VOCABULARY, rng.randint(*KEYWORDS_PER_ITEM))
        question = f"How do I use {', '.join(words[:-1])} and {words[-1]} together?"
        rows.append({"input": {"question": question}, "keywords": words})
    return rows


_KEYWORD_SCORER = {
    "type": "keyword",
    "required_present_from": "keywords",
    "required_absent": ["As an AI"],
}
_LENGTH_SCORER = {"type": "format", "format": "length", "max_tokens": LENGTH_LIMIT}


def _spec(
    name: str,
    base_url: str,
    items: int,
    parameters: dict[str, Any],
    prompts: dict[str, str],
    user: str,
    scorers: list[dict[str, Any]],
) -> str:
    spec = {
        "name": name,
        "endpoint": {"base_url": base_url},
        "parameters": parameters,
        "prompts": prompts,
        "pipeline": [{"name": "answer", "user": user}],
        "dataset": dataset(items, seed=name),
        "scorers": scorers,
        "sweep": {"strategy": "grid", "max_concurrency": 32},
    }
    return yaml.safe_dump(spec, sort_keys=False)


def clear(base_url: str, items: int) -> str:
    """24 configs (4 prompts x 3 models x 2 temperatures), keyword coverage alone: the
    four-sentence prompt on the large model at temperature 0 is best; the three-sentence prompt
    caps the items with 10-12 keywords (about 0.04 below), and temperature 0.8 costs 0.06 on
    average."""
    return _spec(
        "decisions-clear",
        base_url,
        items,
        {
            "prompt": ["one", "two", "three", "plain"],
            "model": ["small-model", "medium-model", "large-model"],
            "temperature": [0.0, 0.8],
            "max_tokens": 256,
        },
        {
            "one": "Answer in one sentence: {{ item.input.question }}",
            "two": "Answer in two sentences: {{ item.input.question }}",
            "three": "Answer in three sentences: {{ item.input.question }}",
            "plain": "Answer: {{ item.input.question }}",
        },
        "{{ prompts[params.prompt] }}",
        [_KEYWORD_SCORER],
    )


def tied(base_url: str, items: int) -> str:
    """24 configs (3 prompts x 8 temperatures, the large model), keyword coverage alone: the
    shape issue 13 was measured on. The three prompts leave room for every keyword (plain, in
    detail, step by step) and score alike; quality falls gently with temperature (0.075 per
    unit on average), so the 9 configs at temperatures 0-0.2 lie within about 0.015 of each
    other at the top (on 200 items, 7 of them within 0.02 of the best), 0.4 is 0.03 below, and
    the rest slope down to 0.09 below at 1.2: no config is far behind, which is what makes a
    race slow to drop anything."""
    return _spec(
        "decisions-tied",
        base_url,
        items,
        {
            "prompt": ["plain", "detailed", "steps"],
            "model": "large-model",
            "temperature": [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2],
            "max_tokens": 256,
        },
        {
            "plain": "Answer: {{ item.input.question }}",
            "detailed": "Answer in detail: {{ item.input.question }}",
            "steps": "Answer step by step: {{ item.input.question }}",
        },
        "{{ prompts[params.prompt] }}",
        [_KEYWORD_SCORER],
    )


def inside(base_url: str, items: int) -> str:
    """24 configs: a sentence count in the prompt (an integral range 1-4, every whole number a
    grid point) x 2 models x 3 temperatures, scored by keyword coverage and answer length
    (equal weights). More sentences name more keywords, but past about 3 sentences the answer
    runs over 40 tokens and the length score falls: the best count lies inside the range.
    The simulator reads 1-3 sentences and writes 4 by default, so the range stops at 4."""
    sentences = "{{ params.sentences }} sentence{{ '' if params.sentences == 1 else 's' }}"
    return _spec(
        "decisions-inside",
        base_url,
        items,
        {
            "sentences": {"min": 1, "max": 4, "steps": 4},
            "model": ["medium-model", "large-model"],
            "temperature": [0.0, 0.3, 0.6],
            "max_tokens": 256,
        },
        {},
        f"Answer in {sentences}: {{{{ item.input.question }}}}",
        [_KEYWORD_SCORER, _LENGTH_SCORER],
    )


@dataclass(frozen=True)
class DecisionSpace:
    name: str
    #: The experiment's YAML for an endpoint at `base_url` and a dataset of `items` items.
    experiment: Callable[[str, int], str]


SPACES = (
    DecisionSpace("clear", clear),
    DecisionSpace("tied", tied),
    DecisionSpace("inside", inside),
)
