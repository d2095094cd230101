"""Facts about the LCO network the adapter and the simulator share: instrument types, the telescope
class each belongs to, their optical elements, modes and configuration types, and overheads.

Sources: the LCO observe portal's request-group format (``shared/reference/000_*.txt``) and its
developer documentation (``001_*.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LCOInstrument:
    type: str  # e.g. 1M0-SCICAM-SINISTRO
    telescope_class: str  # 0m4 | 1m0 | 2m0
    kind: str  # imager | muscat | floyds | nres
    modes: tuple[str, ...]
    default_mode: str
    configuration_types: tuple[str, ...]
    optical_elements: dict = field(default_factory=dict)  # element name -> allowed values
    readout_s: float = 10.0  # per exposure
    setup_s: float = 90.0  # per configuration (slew, acquisition, settle)


IMAGER_CONFIGS = ("EXPOSE", "REPEAT_EXPOSE", "AUTO_FOCUS", "BIAS", "DARK", "SKY_FLAT", "STANDARD")

INSTRUMENTS: dict[str, LCOInstrument] = {
    i.type: i for i in (
        LCOInstrument("0M4-SCICAM-QHY600", "0m4", "imager", ("full_frame", "central30x30"), "full_frame",
                      IMAGER_CONFIGS, {"filter": ("up", "gp", "rp", "ip", "zs", "w", "B", "V")}, readout_s=3.0),
        LCOInstrument("1M0-SCICAM-SINISTRO", "1m0", "imager", ("full_frame", "central_2k_2x2"), "full_frame",
                      IMAGER_CONFIGS, {"filter": ("U", "B", "V", "R", "I", "up", "gp", "rp", "ip", "zs", "Y", "w")},
                      readout_s=28.0),
        LCOInstrument("2M0-SCICAM-MUSCAT", "2m0", "muscat", ("MUSCAT_FAST", "MUSCAT_SLOW"), "MUSCAT_FAST",
                      IMAGER_CONFIGS,
                      {f"narrowband_{c}_position": ("in", "out") for c in "griz"}, readout_s=6.0),
        LCOInstrument("2M0-FLOYDS-SCICAM", "2m0", "floyds", ("default",), "default",
                      ("SPECTRUM", "ARC", "LAMP_FLAT"),
                      {"slit": ("slit_1.2as", "slit_1.6as", "slit_2.0as", "slit_6.0as")}, readout_s=25.0,
                      setup_s=240.0),
        LCOInstrument("1M0-NRES-SCICAM", "1m0", "nres", ("default",), "default", ("NRES_SPECTRUM",), {},
                      readout_s=60.0, setup_s=300.0),
    )
}

TELESCOPE_CLASSES = {"0m4", "1m0", "2m0"}
OBSERVATION_TYPES = ("NORMAL", "RAPID_RESPONSE", "TIME_CRITICAL", "DIRECT")
OPERATORS = ("SINGLE", "MANY")
MUSCAT_EXPOSURE_MODES = ("SYNCHRONOUS", "ASYNCHRONOUS")

# FLOYDS calibrations bracketing the spectrum, exposure times in seconds
FLOYDS_SEQUENCE = (("LAMP_FLAT", 50.0), ("ARC", 60.0), ("SPECTRUM", None), ("ARC", 60.0), ("LAMP_FLAT", 50.0))


def configuration_duration(instrument: LCOInstrument, configuration: dict) -> float:
    """Seconds one configuration takes: setup, then each instrument config's exposures and readouts."""
    total = instrument.setup_s
    for ic in configuration.get("instrument_configs", []):
        exposure = float(ic.get("exposure_time") or 0.0)
        if instrument.kind == "muscat":  # channels expose together: the longest channel sets the pace
            extra = ic.get("extra_params") or {}
            exposure = max([float(extra.get(f"exposure_time_{c}", exposure) or 0.0) for c in "griz"] or [exposure])
        total += int(ic.get("exposure_count") or 0) * (exposure + instrument.readout_s)
    return total


def request_duration(request: dict) -> int:
    repeats = int(request.get("configuration_repeats") or 1)
    total = 0.0
    for conf in request.get("configurations", []):
        inst = INSTRUMENTS.get(conf.get("instrument_type"))
        if inst is not None:
            total += configuration_duration(inst, conf)
    return int(round(total * repeats))
