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
    kind: str  # imager | muscat | floyds | nres | soar_imager | soar_ghts | soar_tspec
    modes: tuple[str, ...]
    default_mode: str
    configuration_types: tuple[str, ...]
    optical_elements: dict = field(default_factory=dict)  # element name -> allowed values
    readout_s: float = 10.0  # per exposure
    setup_s: float = 90.0  # per configuration (slew, acquisition, settle)
    rotator_modes: tuple[str, ...] = ("",)  # allowed instrument_configs[].rotator_mode ("" = none)

    @property
    def spectrograph(self) -> bool:
        return self.kind in ("floyds", "nres", "soar_ghts", "soar_tspec")


IMAGER_CONFIGS = ("EXPOSE", "REPEAT_EXPOSE", "AUTO_FOCUS", "BIAS", "DARK", "SKY_FLAT", "STANDARD")
SPECTRO_CONFIGS = ("SPECTRUM", "REPEAT_SPECTRUM", "ARC", "LAMP_FLAT")
GHTS_RED_MODES = ("GHTS_R_400m2_2x2", "GHTS_R_2100_6507A_1x2_slit0p45", "GHTS_R_400m1_2x2",
                  "GHTS_R_1200_CaNIR_1x2_slit0p8", "GHTS_R_2100_5000A_1x2_slit1p0")
TSPEC_MODES = ("fowler16_coadds1", "fowler1_coadds1", "fowler8_coadds1", "fowler4_coadds1", "fowler1_coadds2")

INSTRUMENTS: dict[str, LCOInstrument] = {
    i.type: i for i in (
        LCOInstrument("0M4-SCICAM-QHY600", "0m4", "imager", ("full_frame", "central30x30"), "full_frame",
                      IMAGER_CONFIGS, {"filter": ("up", "gp", "rp", "ip", "zs", "w", "B", "V")}, readout_s=3.0),
        LCOInstrument("1M0-SCICAM-SINISTRO", "1m0", "imager", ("full_frame", "central_2k_2x2"), "full_frame",
                      IMAGER_CONFIGS, {"filter": ("U", "B", "V", "R", "I", "up", "gp", "rp", "ip", "zs", "Y", "w")},
                      readout_s=28.0),
        LCOInstrument("2M0-SCICAM-SPECTRAL", "2m0", "imager", ("default",), "default", IMAGER_CONFIGS,
                      {"filter": ("U", "B", "V", "R", "I", "up", "gp", "rp", "ip", "zs", "Y", "w")}, readout_s=20.0),
        LCOInstrument("2M0-SCICAM-MUSCAT", "2m0", "muscat", ("MUSCAT_FAST", "MUSCAT_SLOW"), "MUSCAT_FAST",
                      IMAGER_CONFIGS,
                      {f"narrowband_{c}_position": ("in", "out") for c in "griz"}, readout_s=6.0),
        LCOInstrument("2M0-FLOYDS-SCICAM", "2m0", "floyds", ("default",), "default",
                      ("SPECTRUM", "ARC", "LAMP_FLAT"),
                      {"slit": ("slit_1.2as", "slit_1.6as", "slit_2.0as", "slit_6.0as")}, readout_s=25.0,
                      setup_s=240.0, rotator_modes=("VFLOAT", "SKY")),
        LCOInstrument("1M0-NRES-SCICAM", "1m0", "nres", ("default",), "default", ("NRES_SPECTRUM",), {},
                      readout_s=60.0, setup_s=300.0),
        # SOAR 4.1 m, scheduled through the LCO portal (telescope class 4m0)
        LCOInstrument("SOAR_GHTS_BLUECAM_IMAGER", "4m0", "soar_imager", ("GHTS_B_Image_2x2",), "GHTS_B_Image_2x2",
                      IMAGER_CONFIGS, {"filter": ("g-SDSS", "r-SDSS", "i-SDSS", "cn")}, readout_s=10.0,
                      setup_s=300.0),
        LCOInstrument("SOAR_GHTS_REDCAM_IMAGER", "4m0", "soar_imager", ("GHTS_R_Image_2x2",), "GHTS_R_Image_2x2",
                      IMAGER_CONFIGS, {"filter": ("g-SDSS", "r-SDSS", "i-SDSS", "z-SDSS")}, readout_s=10.0,
                      setup_s=300.0),
        LCOInstrument("SOAR_GHTS_BLUECAM", "4m0", "soar_ghts", ("GHTS_B_400m1_2x2",), "GHTS_B_400m1_2x2",
                      SPECTRO_CONFIGS, {}, readout_s=20.0, setup_s=420.0, rotator_modes=("SKY",)),
        LCOInstrument("SOAR_GHTS_REDCAM", "4m0", "soar_ghts", GHTS_RED_MODES, "GHTS_R_400m1_2x2",
                      SPECTRO_CONFIGS, {}, readout_s=20.0, setup_s=420.0, rotator_modes=("SKY",)),
        LCOInstrument("SOAR_TRIPLESPEC", "4m0", "soar_tspec", TSPEC_MODES, "fowler16_coadds1",
                      SPECTRO_CONFIGS, {}, readout_s=15.0, setup_s=420.0, rotator_modes=("SKY",)),
    )
}

TELESCOPE_CLASSES = {"0m4", "1m0", "2m0", "4m0"}
OBSERVATION_TYPES = ("NORMAL", "RAPID_RESPONSE", "TIME_CRITICAL", "DIRECT")
ACQUISITION_MODES = ("OFF", "WCS", "BRIGHTEST", "MANUAL")
# arc exposure per GHTS mode (s), as SkyPortal's soar.py
GHTS_ARC_S = {m: 0.5 for m in ("GHTS_B_400m1_2x2", *GHTS_RED_MODES)}
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
