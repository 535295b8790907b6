"""The text of the two binary knowledge-base documents ``build_kb_documents.py`` renders.

Kept apart from the rendering code (fpdf2 / python-docx) so that editing what
a document says never means reading layout code, and the other way round.
All text must be Latin-1: the PDF uses the fpdf2 core fonts
(``build_kb_documents.py`` checks it before writing).
"""

from __future__ import annotations

# A document is: title, applies-to line, then a list of sections.
# A section is (heading, blocks); a block is either a paragraph string or
# a list of strings (rendered as bullets).

ICS_FORMS = {
    "title": "ICS Forms Guide: Which Form, Who Fills It, When",
    "applies": (
        "Applies to: NEOC staff and incident command posts at Level 2 - Partial "
        "Activation and Level 1 - Full Activation | Owner: NEOC Planning Lead | "
        "Last reviewed: 10 March 2024 (example date)"
    ),
    "sections": [
        ("How the NEOC uses ICS forms", [
            "The NEOC uses the standard Incident Command System (ICS) forms so that every "
            "agency records the same information in the same place. This guide lists the "
            "forms in use, the position that prepares each one, when it is prepared and "
            "who receives it. The roles themselves are described in the ICS Roles document.",
            "Forms are completed on paper or in the electronic templates on the NEOC shared "
            "drive. Every form carries the incident name, the operational period (date and "
            "time from/to), the name and position of the person who prepared it, and the "
            "date and time of preparation. Completed forms are filed by the Documentation "
            "Unit and kept with the Duty Logs.",
            "At Level 3 - Monitoring, ICS forms are not normally used; the Duty Log "
            "(NEOC-F01) is enough. From Level 2 - Partial Activation the forms below apply.",
        ]),
        ("The Incident Action Plan (IAP)", [
            "For each operational period (12 hours at Level 1, 24 hours at Level 2) the "
            "Planning Section assembles a written Incident Action Plan. The IAP is made up of:",
            [
                "ICS 202 Incident Objectives (the cover of the IAP)",
                "ICS 203 Organization Assignment List",
                "ICS 204 Assignment List (one per division or group)",
                "ICS 205 Incident Radio Communications Plan",
                "ICS 206 Medical Plan",
                "ICS 207 Incident Organization Chart",
                "maps and any safety message from the Safety Officer",
            ],
            "The Incident Commander signs the ICS 202 to approve the whole IAP. The IAP is "
            "printed and handed out at the operational period briefing, and must be ready "
            "at least 1 hour before the start of the operational period it covers.",
        ]),
        ("ICS 201 - Incident Briefing", [
            "Purpose: records the initial response - a map or sketch, a summary of current "
            "actions, the current organisation and the resources assigned. It is the first "
            "form of any incident and serves as the IAP for the initial response period.",
            "Prepared by: the initial Incident Commander (at the NEOC, the Duty Officer "
            "until a more senior officer takes command).",
            "When: at the start of the incident, and it is used as the script for every "
            "transfer of command, which always takes place face to face.",
            "Given to: the incoming Incident Commander, Command and General Staff.",
        ]),
        ("ICS 202 - Incident Objectives", [
            "Purpose: states the objectives for the operational period, the priorities, "
            "weather and safety notes, and lists which forms are attached to the IAP.",
            "Prepared by: the Planning Section Chief, from the objectives set by the "
            "Incident Commander.",
            "Approved by: the Incident Commander, whose signature approves the IAP.",
            "When: for every operational period, after the planning meeting.",
        ]),
        ("ICS 203 - Organization Assignment List", [
            "Purpose: lists who fills each position in Command Staff, the sections, "
            "branches, divisions and groups, and the agency representatives.",
            "Prepared by: the Resources Unit Leader (Planning Section).",
            "When: for every operational period, and whenever positions change.",
        ]),
        ("ICS 204 - Assignment List", [
            "Purpose: tells each division or group its work assignment, the resources "
            "assigned (strike teams, task forces, single resources), special instructions "
            "and the radio channels to use.",
            "Prepared by: the Resources Unit Leader, using the tactics agreed by the "
            "Operations Section Chief; one ICS 204 is prepared for each division or group.",
            "When: for every operational period; handed to supervisors at the briefing.",
        ]),
        ("ICS 205 - Incident Radio Communications Plan", [
            "Purpose: lists the radio channels and frequencies assigned to each function "
            "(command, tactical, logistics, air-ground), with repeater details.",
            "Prepared by: the Communications Unit Leader (Logistics Section). The channel "
            "names must match the NEOC channels in the Communication Tree "
            "(CH 1 NEOC COMMAND, CH 2 NEOC BACKUP, CH 3 NEOC LOGISTICS, CH 4 SAR TACTICAL).",
            "When: for every operational period, or when channel assignments change. "
            "An ICS 205A (communications list of phone numbers) may be attached.",
        ]),
        ("ICS 206 - Medical Plan", [
            "Purpose: shows how injured or sick RESPONDERS will be treated: first-aid "
            "points, ambulances, the nearest hospitals with trauma and burns capacity, "
            "helicopter medical evacuation procedure.",
            "Prepared by: the Medical Unit Leader (Logistics Section).",
            "Reviewed by: the Safety Officer, who checks it against the hazards of the "
            "assignments.",
            "When: for every operational period. Note: the ICS 206 is for responders; "
            "care for the affected public is planned by the Health cluster and HEOC.",
        ]),
        ("ICS 207 - Incident Organization Chart", [
            "Purpose: a one-page chart of the incident organisation showing who holds "
            "each position, so that span of control can be checked at a glance.",
            "Prepared by: the Resources Unit Leader.",
            "When: for every operational period; also posted on the wall of the NEOC "
            "operations room.",
        ]),
        ("ICS 209 - Incident Status Summary", [
            "Purpose: summarises the status of an incident for higher authorities: "
            "casualties, people affected and displaced, damage, resources committed, "
            "critical needs and the outlook for the next period.",
            "Prepared by: the Situation Unit Leader (Planning Section) of the incident "
            "command post or District EOC; approved by the Incident Commander.",
            "When: each incident command post sends an ICS 209 to the NEOC for every "
            "NEOC situation report. The ICS 209 must reach the NEOC at least two hours "
            "before each sitrep release time, that is by the data cut-off time. The NEOC "
            "Situation Unit uses the ICS 209s to compile the national situation report.",
        ]),
        ("ICS 211 - Incident Check-in List", [
            "Purpose: records the arrival of every person and resource at the incident: "
            "name, agency, kind of resource, time of arrival, home base and contact.",
            "Prepared by: Check-in Recorders working for the Resources Unit, at every "
            "check-in location (NEOC entrance, staging areas, incident command posts, "
            "the Reception and Departure Centre for international teams).",
            "When: continuously, as resources arrive. Nobody starts work before checking in. "
            "The completed ICS 211 sheets are sent to the Resources Unit at least every "
            "4 hours.",
        ]),
        ("ICS 213 - General Message", [
            "Purpose: a simple three-part message form for any message that is not a radio "
            "call or a phone call: the sender writes the message, the receiver writes the "
            "reply, and the copy is kept.",
            "Prepared by: anyone in the incident organisation.",
            "When: whenever a written message, request or instruction is needed. Resource "
            "requests from the field to the NEOC are NOT sent on ICS 213; they use "
            "NEOC-F07 Resource Request.",
        ]),
        ("ICS 214 - Activity Log", [
            "Purpose: records the main activities, decisions and events of a unit or an "
            "individual during an operational period.",
            "Prepared by: every unit leader and every person holding a Command or General "
            "Staff position; other staff as directed.",
            "When: throughout each operational period; handed to the Documentation Unit "
            "at the end of the operational period. The ICS 214 supplements, and does not "
            "replace, the NEOC Duty Log.",
        ]),
        ("ICS 215 - Operational Planning Worksheet", [
            "Purpose: works out, for each division or group, the work assignments, the "
            "resources needed, the resources already available and the resources that must "
            "be ordered for the next operational period.",
            "Prepared by: the Operations Section Chief with the Planning Section Chief, "
            "during the tactics meeting, with input from the Logistics Section Chief and "
            "the Safety Officer. The Safety Officer uses the related ICS 215A "
            "(Incident Action Plan Safety Analysis).",
            "When: before each planning meeting. Shortfalls become resource orders to "
            "Logistics.",
        ]),
        ("ICS 221 - Demobilization Check-out", [
            "Purpose: makes sure every resource released from the incident has returned "
            "equipment, completed its records and is fit to travel before it leaves.",
            "Prepared by: the Demobilization Unit Leader starts the form; the person or team "
            "being released collects the sign-offs from each unit listed (for example "
            "Supply Unit for radios and equipment, Documentation Unit for ICS 214 logs, "
            "Time Unit for attendance).",
            "When: at the end of each resource's assignment, before departure. International "
            "teams also check out at the Reception and Departure Centre.",
        ]),
        ("Quick reference: who fills which form", [
            [
                "Incident Commander (initial): ICS 201",
                "Planning Section Chief: ICS 202 (approved by the Incident Commander)",
                "Resources Unit Leader: ICS 203, ICS 204, ICS 207",
                "Communications Unit Leader: ICS 205",
                "Medical Unit Leader: ICS 206 (reviewed by the Safety Officer)",
                "Situation Unit Leader: ICS 209",
                "Check-in Recorders: ICS 211",
                "Anyone: ICS 213",
                "Unit leaders and Command/General Staff: ICS 214",
                "Operations Section Chief with Planning Section Chief: ICS 215",
                "Demobilization Unit Leader: ICS 221",
            ],
        ]),
    ],
}

SITREPS = {
    "title": "Situation Reports (Sitreps): Schedule, Template and Deadlines",
    "applies": (
        "Applies to: NEOC Planning Section (Situation Unit), Province and District EOCs "
        "| Owner: NEOC Planning Lead | Last reviewed: 22 May 2024 (example date)"
    ),
    "sections": [
        ("Purpose", [
            "The situation report (sitrep) is the official, regular summary of an emergency "
            "issued by the NEOC. It is used by the Ministry of Home Affairs, security "
            "agencies, line ministries, Province EOCs, clusters and partners to make "
            "decisions. Because it is official, every figure must be sourced and dated.",
        ]),
        ("Types of report", [
            [
                "Flash Report: a short first report (maximum one page) issued within 1 hour "
                "of a Level 1 event, or of any event that triggers Level 2. It states what "
                "happened, where, when, first known impacts and what the NEOC is doing. "
                "Unconfirmed information is clearly labelled UNCONFIRMED.",
                "Situation Report: the regular report issued on the schedule below for as "
                "long as the NEOC is at Level 2 or Level 1.",
                "Daily Bulletin: at Level 3 - Monitoring, a one-page bulletin of incidents "
                "of the previous 24 hours, issued at 10:00 only on days when there were "
                "reportable incidents.",
                "Final Sitrep: issued when the NEOC returns to Level 3, summarising the whole "
                "event with final figures.",
            ],
        ]),
        ("Sitrep schedule", [
            "Each sitrep has a data cut-off time and a release time. The data cut-off is "
            "2 hours before the release time. Information received after the cut-off goes "
            "into the next sitrep unless it is a major change (for example a new mass "
            "casualty event), in which case the Planning Section Chief decides whether to "
            "issue a Flash Report.",
            [
                "Level 2 - Partial Activation: two sitreps a day, released at 09:00 and "
                "17:00 (data cut-off 07:00 and 15:00).",
                "Level 1 - Full Activation: three sitreps a day, released at 08:00, 14:00 "
                "and 20:00 (data cut-off 06:00, 12:00 and 18:00).",
                "After the first 7 days at Level 1, the NEOC Chief may reduce the schedule "
                "to two sitreps a day (09:00 and 17:00).",
            ],
            "Province EOC inputs, District EOC reports and the ICS 209 Incident Status "
            "Summary from each incident command post must reach the NEOC Situation Unit "
            "by the data cut-off time. Missing inputs are noted in the sitrep as "
            "'no report received from ...' with the time of the last report.",
        ]),
        ("Numbering and file names", [
            "Sitreps are numbered by event: NEOC-[year]-[hazard code]-[serial number], for "
            "example NEOC-2024-FL-003 for the third sitrep on a 2024 flood event. Hazard "
            "codes: FL flood, EQ earthquake, LS landslide, FR fire, CW cold wave, "
            "EP epidemic, MH multi-hazard. The Flash Report is number 000; numbering "
            "continues without gaps until the Final Sitrep.",
        ]),
        ("Template", [
            "Every sitrep follows the same structure so that readers can find information "
            "quickly. Maximum length: 4 pages plus annexes.",
            [
                "1. Header: sitrep number, event name, date and time of release, period "
                "covered, data cut-off time, activation level.",
                "2. Highlights: no more than 5 bullet points, each with a figure where "
                "possible; new information since the last sitrep is marked NEW.",
                "3. Situation overview: hazard status (for example river levels, aftershocks, "
                "rainfall forecast) and areas affected.",
                "4. Casualties: deaths, missing and injured, by district.",
                "5. Displacement: households and people displaced; people in shelters, by "
                "district and sex and age where available.",
                "6. Damage: houses fully and partially damaged; public buildings; roads, "
                "bridges, power, water and telecommunications.",
                "7. Response by sector: search and rescue, health, shelter, WASH, food, "
                "protection, logistics.",
                "8. Gaps and needs: unmet needs and constraints, in priority order.",
                "9. Resource requests: pending requests with their age in hours, and "
                "releases since the last sitrep.",
                "10. Next sitrep: time of next release; contact point at the NEOC "
                "(example: Situation Unit, +977-1-555-0130, example number).",
                "Annexes: district tables, maps, list of open shelters.",
            ],
        ]),
        ("Rules for figures", [
            [
                "Every figure has an 'as of' time and a source (for example 'Nepal Police, "
                "as of 06:00').",
                "Deaths are reported only when confirmed by Nepal Police or the District "
                "EOC; other reports of deaths are listed as unconfirmed.",
                "Missing persons are reported separately from deaths and are not added to "
                "the death toll.",
                "Cumulative figures never go down without an explanation in a footnote (for "
                "example 'missing reduced by 4: persons found alive').",
                "Where two sources give different figures, give both with their sources; do "
                "not average them.",
                "Figures for people are disaggregated by sex and age where available.",
                "Health figures (cases and deaths in epidemics) are taken only from the "
                "Ministry of Health and Population / HEOC.",
            ],
        ]),
        ("Preparation and approval", [
            "The Situation Unit Leader drafts the sitrep between the data cut-off and "
            "release. The Planning Section Chief checks it for consistency with the previous "
            "sitrep. The NEOC Chief (as Incident Commander at Level 1) approves it before "
            "release. If the NEOC Chief is not available, the Deputy Chief approves. "
            "The approver's name and the approval time are recorded in the Duty Log.",
            "If a sitrep cannot be released on time, the Duty Officer informs the "
            "distribution list of the new release time before the original deadline.",
        ]),
        ("Distribution", [
            [
                "Secretary and Minister, Ministry of Home Affairs",
                "Nepal Army, Armed Police Force and Nepal Police headquarters",
                "All Province EOCs and the District EOCs of affected districts",
                "Line ministries and the Health Emergency Operation Centre",
                "Cluster lead agencies and the Humanitarian Country Team liaison",
                "Public Information Officer (for the public version on the portal)",
            ],
            "Sitreps are sent by email as PDF and posted on the disaster information "
            "portal. A public version, without personal data and without security-sensitive "
            "details, is prepared by the Public Information Officer.",
        ]),
        ("Common errors", [
            [
                "Copying figures from the previous sitrep without checking whether they "
                "were updated.",
                "Mixing households and people in the same column.",
                "Leaving out districts that did not report instead of saying 'no report'.",
                "Releasing unconfirmed deaths as confirmed.",
            ],
        ]),
    ],
}
