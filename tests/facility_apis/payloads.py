"""The fixed follow-up payloads the golden request groups are built from (windows far in the future)."""

WINDOW = {"start_date": "2031-03-01T00:00:00", "end_date": "2031-03-08T00:00:00"}

PAYLOADS = {
    "0M4-SCICAM-QHY600": {**WINDOW, "observation_choices": ["gp", "rp", "ip"], "exposure_time": 120,
                          "exposure_counts": 2, "maximum_airmass": 1.8, "minimum_lunar_distance": 25},
    "1M0-SCICAM-SINISTRO": {**WINDOW, "observation_choices": ["gp", "rp"], "exposure_time": 300,
                            "exposure_counts": 1, "ipp_value": 1.2},
    "2M0-SCICAM-MUSCAT": {**WINDOW, "exposure_time_g": 120, "exposure_time_r": 100, "exposure_time_i": 90,
                          "exposure_time_z": 150, "exposure_mode": "ASYNCHRONOUS",
                          "narrowband_g_position": "in", "exposure_counts": 3},
    "2M0-FLOYDS-SCICAM": {**WINDOW, "exposure_time": 1800, "slit": "slit_1.6as", "maximum_airmass": 1.6},
    "1M0-NRES-SCICAM": {**WINDOW, "exposure_time": 900, "exposure_counts": 2},
}
TARGET = {"obj_id": "ZTF21aaqjmps", "ra": 197.4481, "dec": -23.3839}
PROPOSAL = "LCO2031A-001"

# SkyPortal's own payload forms (skyportal/facility_apis/lco.py, soar.py), by api_classname
SP_WINDOW = {"start_date": "2031-03-01", "end_date": "2031-03-08"}
_SP = {"observation_mode": "NORMAL", "maximum_airmass": 2.0, "minimum_lunar_distance": 30.0, "priority": 1.0,
       "exposure_counts": 1}
SP_PAYLOADS = {
    "SINISTROAPI": {**SP_WINDOW, **_SP, "observation_choices": ["gp", "rp", "ip"], "exposure_time": 300.0},
    "SPECTRALAPI": {**SP_WINDOW, **_SP, "observation_choices": ["gp", "zs"], "exposure_time": 200.0,
                    "priority": 1.5},
    "MUSCATAPI": {**SP_WINDOW, **_SP, "exposure_time": 120.0, "exposure_counts": 2},
    "FLOYDSAPI": {**SP_WINDOW, **_SP, "exposure_time": 1800.0, "observation_mode": "RAPID_RESPONSE"},
    "SOARGHTSAPI": {**SP_WINDOW, **_SP, "instrument_type": "SOAR_GHTS_REDCAM",
                    "instrument_mode": ["GHTS_R_400m1_2x2"], "include_calibrations": True, "exposure_time": 900.0},
    "SOARGHTSIMAGERAPI": {**SP_WINDOW, **_SP, "instrument_type": "SOAR_GHTS_BLUECAM_IMAGER",
                          "observation_choices": ["g-SDSS", "r-SDSS"], "exposure_time": 60.0},
    "SOARTSPECAPI": {**SP_WINDOW, **_SP, "instrument_mode": "fowler8_coadds1", "exposure_time": 600.0},
    "QHY600API": {**SP_WINDOW, **_SP, "observation_choices": ["gp", "rp"], "exposure_time": 120.0},
    "NRESAPI": {**SP_WINDOW, **_SP, "exposure_time": 900.0},
}
