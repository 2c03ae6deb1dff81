"""The thread policy (cnnlab.utils.threads): the user's setting wins, small work runs on one thread,
larger work on the cores the load average leaves idle."""

from __future__ import annotations

import os

import pytest

from cnnlab.utils import threads


@pytest.fixture
def machine(monkeypatch):
    for var in threads.ENV_VARS:
        monkeypatch.delenv(var, raising=False)

    def set_machine(cores: int, load: float):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    return set_machine


def test_small_work_runs_on_one_thread_whatever_the_machine(machine):
    machine(2, 0.0)
    lenet_step = 3 * 16 * 416_520  # forward + backward of a batch of 16 LeNet-5 digits
    assert threads.choose_threads(lenet_step) == 1
    assert threads.choose_threads(threads.SMALL_WORK * 0.99) == 1


def test_large_work_takes_the_idle_cores(machine):
    machine(2, 0.1)
    assert threads.choose_threads(1e11) == 2
    machine(2, 1.2)  # another program keeps one core busy
    assert threads.choose_threads(1e11) == 1
    machine(16, 5.5)
    assert threads.choose_threads(None) == 11
    machine(2, 7.0)
    assert threads.choose_threads(1e11) == 1


def test_the_users_setting_wins(machine, monkeypatch):
    machine(2, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads(10) == 2
    monkeypatch.setenv("CNNLAB_THREADS", "3")
    assert threads.choose_threads(10) == 3


def test_blas_threads_limits_numpy(machine):
    from threadpoolctl import threadpool_info

    with threads.blas_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
