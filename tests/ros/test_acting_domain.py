"""Private acting's settings on one host (issue 24): on by default with Fast DDS, off with
PAMIQ_PRIVATE_ACTING=0, another RMW or the user's own profile; and two graphs on one host that
would use a domain the other way round are refused. At work: tests/test_private_acting.py."""

from __future__ import annotations

import subprocess
import sys

from pamiq.ros import acting_domain
from pamiq.ros.transport import PROFILE_VARIABLES, describe_settings, transport_settings
import pytest


def test_one_host_acts_privately_by_default_and_says_so():
    env = {'ROS_DOMAIN_ID': '7'}
    settings = transport_settings(env)
    assert settings[acting_domain.ENABLE_VARIABLE] == '1'
    assert all(settings[name].endswith(acting_domain.SPLIT_PROFILE) for name in PROFILE_VARIABLES)
    said = describe_settings(env, settings)
    assert 'private domain 107' in said and 'domain 7' in said, said


@pytest.mark.parametrize(
    'env',
    [
        {acting_domain.ENABLE_VARIABLE: '0'},
        {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'},
    ],
)
def test_private_acting_is_off_when_asked_or_with_another_rmw(env):
    settings = transport_settings(env)
    assert acting_domain.ENABLE_VARIABLE not in settings
    assert all(settings[name].endswith('fastdds_loopback.xml') for name in PROFILE_VARIABLES)


def test_the_users_own_profile_is_left_alone():
    assert transport_settings({PROFILE_VARIABLES[0]: '/my/profile.xml'}) == {}


# Claims in a child process that holds them until its stdin closes.
HOLDER = """
import sys
from pamiq.ros import acting_domain
acting_domain.CLAIMS_DIRECTORY = sys.argv[1]
try:
    acting_domain.claim_domains({'ROS_DOMAIN_ID': sys.argv[2]})
except acting_domain.DomainInUse as error:
    print('refused', error, flush=True)
    raise SystemExit(3)
print('claimed', flush=True)
sys.stdin.read()
"""


def hold(directory, domain: int) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, '-c', HOLDER, str(directory), str(domain)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    holder.said = holder.stdout.readline()
    return holder


def test_a_graph_on_another_graphs_acting_domain_is_refused_the_same_graph_is_not(tmp_path):
    first = hold(tmp_path, 7)  # public 7, acting 107
    try:
        assert first.said.startswith('claimed'), first.said
        clash = hold(tmp_path, 107)  # public 107 is the first graph's acting domain
        assert clash.wait(30) == 3
        assert 'domain 107 is the acting domain of another pamiq graph' in clash.said
        again = hold(tmp_path, 7)  # e.g. an actor started apart: the same graph
        assert again.said.startswith('claimed'), again.said
        again.stdin.close()
        assert again.wait(30) == 0
    finally:
        first.stdin.close()
        first.wait(30)
    # the first graph gone, its domains are free
    later = hold(tmp_path, 107)
    assert later.said.startswith('claimed'), later.said
    later.stdin.close()
    assert later.wait(30) == 0


def test_a_launch_started_by_pamiq_up_finds_the_settings_made_and_says_so():
    env = {'ROS_DOMAIN_ID': '7', **transport_settings({'ROS_DOMAIN_ID': '7'})}
    assert transport_settings(env) == {}
    assert 'private domain 107' in describe_settings(env, {})
    own = {PROFILE_VARIABLES[0]: '/my/profile.xml'}
    assert describe_settings(own, {}) == 'your own profile /my/profile.xml'
