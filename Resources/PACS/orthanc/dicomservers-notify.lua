local NOTIFY_URL = "http://127.0.0.1:8765/notify"
local NOTIFY_TOKEN = ""
local NOTIFY_SERVER = ""
-- DicomServers notification plugin for Orthanc (server-side Lua script).
--
-- Tells a 3D Slicer running the DicomServers extension that a new instance was stored, and
-- that a series or a study is complete (no new instance for Orthanc's "StableAge" seconds).
-- Install: see README.md next to this file. Set the three lines above:
--   NOTIFY_URL    http://<Notification IP>:<Notification Port>/notify of the Slicer client
--   NOTIFY_TOKEN  the shared secret also given to the client ("" for none)
--   NOTIFY_SERVER the name of this server in the client's server list ("" when the client's
--                 listener serves only this server)
--
-- Failure-tolerant: every post runs inside pcall and has a short timeout, so a client that is
-- down, slow or refusing never raises an error into Orthanc. Orthanc runs Lua callbacks on its
-- own event thread, after the instance is stored, so storage never waits for the client.
-- Orthanc loads every script of "LuaScripts" into one Lua context: a callback defined by a
-- script listed before this one is kept and still called (list this script last).
--
-- Lua API used (Orthanc 1.10.1): HttpPost(url, body, headers), DumpJson(value, keepStrings),
-- ParseJson(text), RestApiGet(uri), print (to Orthanc's log); SetHttpTimeout(seconds) when
-- the Orthanc version has it (1.10.1 does not: its "HttpTimeout" option applies).
-- Message format: JSON, documented in DicomServersLib/notifications/events.py.

-- Seconds one post may take before it is abandoned (Orthanc versions with SetHttpTimeout).
local NOTIFY_TIMEOUT_S = 2
-- After a failed post, instance notifications pause this many seconds (series and study
-- notifications are always tried), so a client that is away costs Orthanc little.
local NOTIFY_RETRY_S = 10
-- Post one notification per stored instance (false: only series and studies).
local NOTIFY_INSTANCES = true

local failingSince = nil
local lastRefusalLog = nil

local function Text(value)
  if type(value) == "string" then
    return value
  end
  return ""
end

local function Post(payload, isInstance)
  if isInstance and failingSince ~= nil and os.time() - failingSince < NOTIFY_RETRY_S then
    return
  end
  if NOTIFY_SERVER ~= "" then
    payload["server"] = NOTIFY_SERVER
  end
  local headers = { ["Content-Type"] = "application/json" }
  if NOTIFY_TOKEN ~= "" then
    headers["X-DicomServers-Token"] = NOTIFY_TOKEN
  end
  if SetHttpTimeout ~= nil then
    SetHttpTimeout(NOTIFY_TIMEOUT_S)  -- newer Orthanc; 1.10.1 uses the "HttpTimeout" option
  end
  -- keepStrings: a PatientID such as "00123" must stay text
  local answer = HttpPost(NOTIFY_URL, DumpJson(payload, true), headers)
  if answer == nil then
    if failingSince == nil then
      print("DicomServers notify: no answer from " .. NOTIFY_URL ..
            " (is Slicer running with notifications on?); will keep trying")
    end
    failingSince = os.time()
  elseif string.find(answer, '"accepted"', 1, true) == nil then
    -- at most one line per NOTIFY_RETRY_S: a refused burst must not flood Orthanc's log
    if lastRefusalLog == nil or os.time() - lastRefusalLog >= NOTIFY_RETRY_S then
      print("DicomServers notify: " .. NOTIFY_URL .. " refused a notification: " ..
            string.sub(answer, 1, 300))
      lastRefusalLog = os.time()
    end
  else
    if failingSince ~= nil then
      print("DicomServers notify: " .. NOTIFY_URL .. " answers again")
    end
    failingSince = nil
  end
end

local function Parent(uri)
  local text = RestApiGet(uri)
  if text == nil then
    return {}
  end
  local parsed = ParseJson(text)
  if type(parsed) ~= "table" then
    return {}
  end
  return parsed
end

local function Study(studyId)
  local study = Parent("/studies/" .. studyId)
  return study["MainDicomTags"] or {}, study["PatientMainDicomTags"] or {}
end

local function NotifyInstance(instanceId, tags)
  if not NOTIFY_INSTANCES then
    return
  end
  Post({
    kind = "instance",
    resource_id = instanceId,
    study_uid = Text(tags["StudyInstanceUID"]),
    series_uid = Text(tags["SeriesInstanceUID"]),
    sop_instance_uid = Text(tags["SOPInstanceUID"]),
    patient_id = Text(tags["PatientID"]),
    patient_name = Text(tags["PatientName"]),
    study_description = Text(tags["StudyDescription"]),
    modality = Text(tags["Modality"]),
  }, true)
end

local function NotifySeries(seriesId, tags)
  local series = Parent("/series/" .. seriesId)
  local study, patient = Study(Text(series["ParentStudy"]))
  Post({
    kind = "series",
    resource_id = seriesId,
    study_uid = Text(study["StudyInstanceUID"]),
    series_uid = Text(tags["SeriesInstanceUID"]),
    patient_id = Text(patient["PatientID"]),
    patient_name = Text(patient["PatientName"]),
    study_description = Text(study["StudyDescription"]),
    modality = Text(tags["Modality"]),
  }, false)
end

local function NotifyStudy(studyId, tags)
  local study, patient = Study(studyId)
  Post({
    kind = "study",
    resource_id = studyId,
    study_uid = Text(tags["StudyInstanceUID"]),
    patient_id = Text(patient["PatientID"]),
    patient_name = Text(patient["PatientName"]),
    study_description = Text(tags["StudyDescription"]),
  }, false)
end

local function Guarded(what, notify, ...)
  local ok, message = pcall(notify, ...)
  if not ok then
    print("DicomServers notify: " .. what .. " notification failed: " .. tostring(message))
  end
end

local previousOnStoredInstance = OnStoredInstance
local previousOnStableSeries = OnStableSeries
local previousOnStableStudy = OnStableStudy

function OnStoredInstance(instanceId, tags, metadata, origin)
  Guarded("instance", NotifyInstance, instanceId, tags)
  if previousOnStoredInstance ~= nil then
    return previousOnStoredInstance(instanceId, tags, metadata, origin)
  end
end

function OnStableSeries(seriesId, tags, metadata)
  Guarded("series", NotifySeries, seriesId, tags)
  if previousOnStableSeries ~= nil then
    return previousOnStableSeries(seriesId, tags, metadata)
  end
end

function OnStableStudy(studyId, tags, metadata)
  Guarded("study", NotifyStudy, studyId, tags)
  if previousOnStableStudy ~= nil then
    return previousOnStableStudy(studyId, tags, metadata)
  end
end
