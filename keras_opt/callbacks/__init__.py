"""Callbacks that log OPT's invariants and schedule the baselines."""

from keras_opt.callbacks.energy_monitor import EnergyMonitor
from keras_opt.callbacks.orthogonality_monitor import OrthogonalityMonitor
from keras_opt.callbacks.srip_scheduler import SRIPScheduler
from keras_opt.callbacks.srip_scheduler import srip_schedule
from keras_opt.callbacks.subspace_episodes import SubspaceEpisodes
from keras_opt.callbacks.subspace_episodes import next_subspace_episode
