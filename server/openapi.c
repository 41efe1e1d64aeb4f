/*
 * openapi.c — the OpenAPI 3 document served at /openapi.json and the
 * /docs page that renders it.
 *
 * The document is written below as plain JSON (the JSON() macro turns the
 * tokens into a C string, escaping the quotes), parsed with jansson when
 * the server starts, and completed with what only the running server
 * knows: the version and the configured limits (k, list sizes, ID length,
 * body size). Parsing it at start means a typo in the document stops the
 * server in tests rather than shipping broken JSON; the unit tests also
 * check that every route of the route table is documented.
 *
 * /docs is one self-contained HTML page (no CDN: SageMaker endpoints and
 * many production networks have no internet): it fetches /openapi.json,
 * lists every operation with its parameters, and sends requests with
 * fetch(), showing status and body.
 */
#include "online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON(...) #__VA_ARGS__

static const char openapi_template[] = JSON({
  "openapi": "3.0.3",
  "info": {
    "title": "cofi recommender API",
    "version": "",
    "description": "Recommendations from an implicit-feedback ALS model (cofi). IDs are strings exactly as in the training data. In query strings, percent-encode IDs (a space is %20 or +, a comma inside an ID in a list is written \\, and sent as %5C%2C; a backslash is \\\\). Errors are JSON: {\"error\": {\"code\": \"...\", \"message\": \"...\"}}. Any request may also be answered, with Connection: close: 503 server_busy (over --max-connections, with Retry-After), 400 bad_framing (duplicate or list Content-Length, Content-Length with Transfer-Encoding, a Transfer-Encoding other than exactly chunked), 501 unsupported_transfer_coding (gzip, chunked)."
  },
  "paths": {
    "/ping": {
      "get": {
        "summary": "Liveness (SageMaker health check)",
        "operationId": "ping",
        "responses": {
          "200": {"description": "The model is loaded.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/health": {
      "get": {
        "summary": "Status and model metadata",
        "operationId": "health",
        "responses": {
          "200": {"description": "Model metadata, reload status, server settings.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
          "503": {"description": "No model is being served (status and error model_unavailable, model null, the reason in error.message).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}
        }
      }
    },
    "/recommend": {
      "get": {
        "summary": "Top-k items for a known user, or for a new user from the items they liked",
        "description": "Give user_id for a user of the training data, or liked for a user the model has not seen (cold start: the liked items are folded into a user vector and never recommended back). Items the user had in training are left out unless filter_seen=false.",
        "operationId": "recommend",
        "parameters": [
          {"$ref": "#/components/parameters/user_id"},
          {"$ref": "#/components/parameters/liked"},
          {"$ref": "#/components/parameters/k"},
          {"$ref": "#/components/parameters/filter_seen"},
          {"$ref": "#/components/parameters/exclude"},
          {"$ref": "#/components/parameters/explain"},
          {"$ref": "#/components/parameters/category"},
          {"$ref": "#/components/parameters/items"}
        ],
        "responses": {
          "200": {"description": "Recommendations, best first. With --store, source says how a user was answered: absent (the model), online (folded in from the model's row and the user's store events), popular (no events at all: the /popular list).", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/Recommendations"}, {"$ref": "#/components/schemas/ColdStartRecommendations"}]}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/recommend_cold": {
      "get": {
        "summary": "Cold start: top-k items for a new user from the items they liked",
        "operationId": "recommendCold",
        "parameters": [
          {"$ref": "#/components/parameters/liked_required"},
          {"$ref": "#/components/parameters/k"},
          {"$ref": "#/components/parameters/exclude"},
          {"$ref": "#/components/parameters/explain"}
        ],
        "responses": {
          "200": {"description": "Recommendations, best first; liked IDs the model does not know are listed under unknown.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ColdStartRecommendations"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/invocations": {
      "post": {
        "summary": "SageMaker inference: the same answer as /recommend, from a JSON body",
        "operationId": "invocations",
        "requestBody": {
          "required": true,
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecommendRequest"}, "example": {"user_id": "1", "k": 5}}}
        },
        "responses": {
          "200": {"description": "Recommendations, best first.", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/Recommendations"}, {"$ref": "#/components/schemas/ColdStartRecommendations"}]}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/recommend/batch": {
      "post": {
        "summary": "Recommendations for many known users in one request (users x k at most 100000)",
        "operationId": "recommendBatch",
        "requestBody": {
          "required": true,
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}, "example": {"users": ["1", "2"], "k": 10}}}
        },
        "responses": {
          "200": {"description": "One result per requested user, in order: recommendations, or an error for that user.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResults"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/similar_items": {
      "get": {
        "summary": "Items most similar to an item (ALS: cosine of item factors; EASE: the item's row of B; item-kNN: its neighbours)",
        "operationId": "similarItems",
        "parameters": [
          {"name": "item_id", "in": "query", "required": true, "schema": {"type": "string"}, "example": "1"},
          {"$ref": "#/components/parameters/k"}
        ],
        "responses": {
          "200": {"description": "Similar items, most similar first, the item itself excluded.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SimilarItems"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/similar_users": {
      "get": {
        "summary": "Users most similar to a user (cosine of user factors; ALS models only: 400 needs_als_model otherwise)",
        "operationId": "similarUsers",
        "parameters": [
          {"name": "user_id", "in": "query", "required": true, "schema": {"type": "string"}, "example": "1"},
          {"$ref": "#/components/parameters/k"}
        ],
        "responses": {
          "200": {"description": "Similar users, most similar first, the user itself excluded.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SimilarUsers"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/items/{id}": {
      "get": {
        "summary": "An item's metadata (every column of the items file)",
        "operationId": "item",
        "parameters": [
          {"name": "id", "in": "path", "required": true, "description": "The item ID, percent-encoded (a / in an ID is %2F).", "schema": {"type": "string"}, "example": "11"}
        ],
        "responses": {
          "200": {"description": "The item.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/explain": {
      "get": {
        "summary": "Why an item is recommended: its score split into the contributions of the history items",
        "description": "The exact decomposition of the score through the user's weighted least-squares solve (Hu, Koren and Volinsky 2008, section 5): one contribution per history item, largest first; they sum to score. Give user_id for a known user or liked for a new one.",
        "operationId": "explain",
        "parameters": [
          {"$ref": "#/components/parameters/user_id"},
          {"$ref": "#/components/parameters/liked"},
          {"name": "item_id", "in": "query", "required": true, "description": "The item to explain.", "schema": {"type": "string"}, "example": "296"},
          {"name": "n", "in": "query", "description": "List only the n largest contributions (the rest summed in others). Default: all.", "schema": {"type": "integer", "minimum": 1}}
        ],
        "responses": {
          "200": {"description": "The explanation.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Explanation"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/items": {
      "get": {
        "summary": "Search items by title (case-insensitive prefix and substring)",
        "description": "Matches rank: the item whose ID is the search, then titles starting with it, then titles with a word starting with it, then any substring; ties by how many users had the item. Case-insensitive for ASCII letters. Without titles the item IDs are searched.",
        "operationId": "itemSearch",
        "parameters": [
          {"name": "search", "in": "query", "required": true, "description": "1 to 200 bytes.", "schema": {"type": "string"}, "example": "matrix"},
          {"$ref": "#/components/parameters/k"}
        ],
        "responses": {
          "200": {"description": "The best k matches and how many items match.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemSearch"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/users/{id}/history": {
      "get": {
        "summary": "A user's history: the items they had in training, largest values first",
        "description": "From the model's training matrix (source model); with a store attached, from the store (source store).",
        "operationId": "userHistory",
        "parameters": [
          {"name": "id", "in": "path", "required": true, "description": "The user ID, percent-encoded.", "schema": {"type": "string"}, "example": "1"},
          {"name": "limit", "in": "query", "description": "At most this many events (1 to 100000).", "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 50}}
        ],
        "responses": {
          "200": {"description": "The history.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/History"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"$ref": "#/components/responses/NotFound"},
          "503": {"$ref": "#/components/responses/Unavailable"}
        }
      }
    },
    "/ui/{file}": {
      "get": {
        "summary": "The dashboard (HTML, JavaScript, CSS compiled into the server)",
        "description": "Open /ui/ in a browser. Pages: #/model, #/user/ID, #/item/ID, #/try?liked=a,b,c, #/live. Served with Content-Security-Policy default-src 'self'.",
        "operationId": "ui",
        "parameters": [
          {"name": "file", "in": "path", "required": true, "description": "Empty for index.html.", "schema": {"type": "string"}, "example": "index.html"}
        ],
        "responses": {
          "200": {"description": "The file.", "content": {"text/html": {"schema": {"type": "string"}}}},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    },
    "/ui": {
      "get": {
        "summary": "Redirects to /ui/",
        "operationId": "uiRedirect",
        "responses": {
          "301": {"description": "Location: ui/ (relative)."}
        }
      }
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics: requests by route and status, latency histograms, model info",
        "operationId": "metrics",
        "responses": {
          "200": {"description": "Prometheus text exposition format 0.0.4.", "content": {"text/plain": {"schema": {"type": "string"}}}}
        }
      }
    },
    "/openapi.json": {
      "get": {
        "summary": "This document",
        "operationId": "openapi",
        "responses": {
          "200": {"description": "OpenAPI 3 document.", "content": {"application/json": {"schema": {"type": "object"}}}}
        }
      }
    },
    "/docs": {
      "get": {
        "summary": "A page that lists the API and sends requests",
        "operationId": "docs",
        "responses": {
          "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
        }
      }
    },
    "/admin/reload": {
      "post": {
        "summary": "Reopen the model file and swap it in without dropping requests",
        "description": "Enabled only when the server was started with --admin-token; otherwise 403. In-flight requests finish on the old model. A bad new file leaves the old model serving and answers 500 reload_failed with the reason. SIGHUP does the same.",
        "operationId": "adminReload",
        "security": [{"adminToken": []}],
        "responses": {
          "200": {"description": "The new model is serving.", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["reloaded"]}, "model": {"$ref": "#/components/schemas/ModelInfo"}}}}}},
          "401": {"description": "Missing or wrong token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "403": {"description": "Reload over HTTP is disabled (no --admin-token).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "500": {"description": "The new file could not be loaded; the old model keeps serving.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/models": {
      "get": {
        "summary": "The versions of the models directory, which one is live, and the retrain state",
        "description": "Needs cofi serve --store URL --models-dir DIR (else 404 versions_disabled) and the admin token. Each version: number, creation time, data size, training metrics and the check's metrics (Recall@10 on the newest events the live model had not seen, of the new model and of the live one it was compared with), status live, kept or rejected and why.",
        "operationId": "adminModels",
        "security": [{"adminToken": []}],
        "responses": {
          "200": {"description": "The versions, oldest first.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Versions"}}}},
          "401": {"description": "Missing or wrong token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "403": {"description": "No --admin-token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "404": {"description": "No --models-dir (code versions_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/rollback": {
      "post": {
        "summary": "Serve another version: the previous good one, or a named one",
        "description": "Body optional: {\"version\": N}. Without it: the newest kept version older than the live one. Swapped in like a reload: no request is dropped, and the answers are exactly that version's. The version left becomes kept (reason: rolled back); a later restart serves the version now live.",
        "operationId": "adminRollback",
        "security": [{"adminToken": []}],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"version": {"type": "integer", "minimum": 1}}}}}},
        "responses": {
          "200": {"description": "The version now live (status rolled_back, or already_live when it was).", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["rolled_back", "already_live"]}, "live": {"type": "integer"}, "previous": {"type": "integer", "nullable": true}}}}}},
          "400": {"description": "A bad body (codes invalid_json, invalid_body, invalid_version).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "401": {"description": "Missing or wrong token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "403": {"description": "No --admin-token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "404": {"description": "No such version (unknown_version), or no --models-dir (versions_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "409": {"description": "No kept version to go back to (no_previous_version), or the version was rejected by the check (version_rejected).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "500": {"description": "The version's file could not be loaded (rollback_failed); the live version stays.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/admin/retrain": {
      "post": {
        "summary": "Retrain from the store now, in the background",
        "description": "Answers 202 at once. status started: a retrain begins; queued: one is running, and another starts when it ends (requests while one is queued add nothing). GET /admin/models shows its progress and result. No body, or {}.",
        "operationId": "adminRetrain",
        "security": [{"adminToken": []}],
        "responses": {
          "202": {"description": "Started or queued.", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string", "enum": ["started", "queued"]}, "live": {"type": "integer"}, "message": {"type": "string"}}}}}},
          "400": {"description": "A body other than {} (invalid_body, invalid_json).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "401": {"description": "Missing or wrong token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "403": {"description": "No --admin-token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "404": {"description": "No --models-dir (versions_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "adminToken": {"type": "http", "scheme": "bearer", "description": "The token given to cofi serve --admin-token."}
    },
    "parameters": {
      "user_id": {"name": "user_id", "in": "query", "description": "A user of the training data.", "schema": {"type": "string"}, "example": "1"},
      "liked": {"name": "liked", "in": "query", "description": "Cold start: comma-separated IDs of items the user liked (backslash escapes a comma or backslash inside an ID). May be repeated; the lists are joined.", "schema": {"type": "string"}, "example": "296,318,593"},
      "liked_required": {"name": "liked", "in": "query", "required": true, "description": "Comma-separated IDs of items the user liked (backslash escapes a comma or backslash inside an ID). May be repeated.", "schema": {"type": "string"}, "example": "296,318,593"},
      "k": {"name": "k", "in": "query", "description": "How many results.", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}},
      "filter_seen": {"name": "filter_seen", "in": "query", "description": "Leave out the user's training items.", "schema": {"type": "boolean", "default": true}},
      "exclude": {"name": "exclude", "in": "query", "description": "Comma-separated item IDs never to return (unknown IDs are ignored). May be repeated.", "schema": {"type": "string"}},
      "explain": {"name": "explain", "in": "query", "description": "Add to each recommendation \"because\": the 3 history items that contribute most to its score (as in GET /explain). Costs one factorization per request plus one solve per item; nothing when off.", "schema": {"type": "boolean", "default": false}}
    },
    "responses": {
      "BadRequest": {"description": "Malformed parameters or body (codes: invalid_k, invalid_id, invalid_json, invalid_type, missing_parameter, unknown_parameter, unknown_field, too_many_ids, batch_too_large, invalid_encoding, ...).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "Unknown user or item (codes: unknown_user, unknown_item, unknown_items), or no such endpoint (not_found).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "TooLarge": {"description": "The body is over the limit (code body_too_large); a chunked body is answered as soon as it passes the limit, and the connection is closed.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "No model is being served (code model_unavailable): only after the served file was rewritten in place and its private copy failed; a successful reload ends it.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "Status": {"type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}, "required": ["status"]},
      "Versions": {"type": "object", "required": ["live", "models"], "properties": {"live": {"type": "integer", "nullable": true}, "keep": {"type": "integer"}, "margin": {"type": "number"}, "retrain": {"$ref": "#/components/schemas/RetrainState"}, "models": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}}}},
      "Version": {"type": "object", "required": ["version", "created", "users", "items", "interactions", "metrics", "status", "reason"], "properties": {"version": {"type": "integer"}, "file": {"type": "string"}, "created": {"type": "string", "format": "date-time"}, "created_unix": {"type": "integer"}, "users": {"type": "integer"}, "items": {"type": "integer"}, "interactions": {"type": "integer", "description": "User-item pairs of the training matrix."}, "content_checksum": {"type": "string"}, "metrics": {"type": "object", "properties": {"k": {"type": "integer"}, "loss": {"type": "number"}, "train_seconds": {"type": "number"}, "recall_at_10": {"type": "number", "description": "The check model's, on the held-out newest events."}, "live_recall_at_10": {"type": "number", "description": "The live model's on the same events."}, "compared_with_version": {"type": "integer"}, "held_out_users": {"type": "integer"}, "held_out_events": {"type": "integer"}}}, "status": {"type": "string", "enum": ["live", "kept", "rejected"]}, "reason": {"type": "string", "nullable": true}}},
      "RetrainState": {"type": "object", "properties": {"state": {"type": "string", "enum": ["idle", "running"]}, "trigger": {"type": "string", "enum": ["request", "schedule", "events"], "nullable": true}, "queued": {"type": "boolean"}, "started": {"type": "string", "format": "date-time", "nullable": true}, "finished": {"type": "string", "format": "date-time", "nullable": true}, "last_result": {"type": "string", "enum": ["succeeded", "rejected", "failed", "cancelled"], "nullable": true}, "last_error": {"type": "string", "nullable": true}, "last_duration_seconds": {"type": "number", "nullable": true}, "started_total": {"type": "integer"}, "succeeded": {"type": "integer"}, "rejected": {"type": "integer"}, "failed": {"type": "integer"}, "cancelled": {"type": "integer"}}},
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string", "description": "Stable code word."}, "message": {"type": "string", "description": "For people; quotes at most 48 bytes of input."}}}}},
      "ScoredItem": {"type": "object", "required": ["item_id", "score"], "properties": {"item_id": {"type": "string"}, "score": {"type": "number"}, "title": {"type": "string", "description": "When the model has item titles."}, "because": {"type": "array", "description": "With explain=1: the 3 history items contributing most to the score, largest first.", "items": {"$ref": "#/components/schemas/Contribution"}}, "source": {"type": "string", "enum": ["metadata"], "description": "With --store: a store item the model has not seen, scored with a vector from its categories (docs/serving.md, New items); absent for the model's items."}}},
      "Contribution": {"type": "object", "required": ["item_id", "contribution"], "properties": {"item_id": {"type": "string"}, "title": {"type": "string"}, "contribution": {"type": "number", "description": "This history item's share of the score (may be negative)."}}},
      "Explanation": {"type": "object", "required": ["item_id", "score", "history", "because", "others"], "properties": {"user_id": {"type": "string"}, "liked": {"type": "array", "items": {"type": "string"}, "description": "Cold start: the liked items the model knows."}, "item_id": {"type": "string"}, "title": {"type": "string"}, "score": {"type": "number", "description": "The score of the user vector recalculated from the history (for a known user it can differ from /recommend's score by the training's last half step)."}, "history": {"type": "integer", "description": "History items (contributions in all)."}, "because": {"type": "array", "items": {"$ref": "#/components/schemas/Contribution"}}, "others": {"type": "number", "description": "The sum of the contributions not listed (0 without n): because + others = score."}}},
      "ItemSearch": {"type": "object", "required": ["search", "matches", "items"], "properties": {"search": {"type": "string"}, "matches": {"type": "integer", "description": "Items matching in all."}, "items": {"type": "array", "items": {"type": "object", "properties": {"item_id": {"type": "string"}, "title": {"type": "string"}, "interactions": {"type": "integer"}}}}}},
      "History": {"type": "object", "required": ["user_id", "source", "events"], "properties": {"user_id": {"type": "string"}, "source": {"type": "string", "enum": ["model", "store"]}, "total": {"type": "integer"}, "events": {"type": "array", "items": {"type": "object", "properties": {"item_id": {"type": "string"}, "title": {"type": "string"}, "value": {"type": "number"}}}}}},
      "Recommendations": {"type": "object", "required": ["user_id", "recommendations"], "properties": {"user_id": {"type": "string"}, "recommendations": {"type": "array", "items": {"$ref": "#/components/schemas/ScoredItem"}}}},
      "ColdStartRecommendations": {"type": "object", "required": ["liked", "unknown", "recommendations"], "properties": {"liked": {"type": "array", "items": {"type": "string"}, "description": "The liked IDs the model knows (used for the fold-in)."}, "unknown": {"type": "array", "items": {"type": "string"}, "description": "Liked IDs the model does not know (ignored)."}, "recommendations": {"type": "array", "items": {"$ref": "#/components/schemas/ScoredItem"}}}},
      "RecommendRequest": {"type": "object", "additionalProperties": false, "properties": {"user_id": {"oneOf": [{"type": "string"}, {"type": "integer"}]}, "liked": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}, "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 5}, "filter_seen": {"type": "boolean", "default": true}, "explain": {"type": "boolean", "default": false, "description": "Add \"because\" to each recommendation."}, "exclude": {"type": "array", "maxItems": 1000, "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}, "description": "Exactly one of user_id and liked."},
      "BatchRequest": {"type": "object", "additionalProperties": false, "required": ["users"], "properties": {"users": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}, "k": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}, "filter_seen": {"type": "boolean", "default": true}}},
      "BatchResults": {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/Recommendations"}, {"type": "object", "required": ["user_id", "error"], "properties": {"user_id": {"type": "string"}, "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}]}}}},
      "SimilarItems": {"type": "object", "required": ["item_id", "similar"], "properties": {"item_id": {"type": "string"}, "similar": {"type": "array", "items": {"$ref": "#/components/schemas/ScoredItem"}}}},
      "SimilarUsers": {"type": "object", "required": ["user_id", "similar"], "properties": {"user_id": {"type": "string"}, "similar": {"type": "array", "items": {"type": "object", "properties": {"user_id": {"type": "string"}, "score": {"type": "number"}}}}}},
      "Item": {"type": "object", "required": ["item_id"], "properties": {"item_id": {"type": "string"}}, "additionalProperties": {"type": "string"}, "description": "item_id plus every column of the items file (e.g. title, genres), and interactions: how many users had the item in training (an integer)."},
      "ModelInfo": {"type": "object", "properties": {"path": {"type": "string"}, "generation": {"type": "integer"}, "users": {"type": "integer"}, "items": {"type": "integer"}, "factors": {"type": "integer"}, "interactions": {"type": "integer"}, "trained_at": {"type": "string", "format": "date-time", "nullable": true, "description": "null when the file's creation time is no date of the years 1970-9999."}, "loaded_at": {"type": "string", "format": "date-time", "nullable": true}, "train_seconds": {"type": "number"}, "train_loss": {"type": "number", "nullable": true}, "file_bytes": {"type": "integer"}, "checksum": {"type": "string"}, "storage": {"type": "string", "enum": ["mapped", "private"], "description": "mapped: the file is mapped under a read lease; private: read into memory (no lease, or the file was rewritten in place)."}, "cofi_version": {"type": "string"}, "item_fields": {"type": "array", "items": {"type": "string"}}, "params": {"type": "object"}}},
      "Health": {"type": "object", "properties": {"status": {"type": "string"}, "model": {"$ref": "#/components/schemas/ModelInfo"}, "reloads": {"type": "object", "properties": {"succeeded": {"type": "integer"}, "failed": {"type": "integer"}, "last_error": {"type": "string", "nullable": true}}}, "server": {"type": "object", "properties": {"version": {"type": "string"}, "kernel_set": {"type": "string", "enum": ["avx512", "avx2", "generic", "reference"]}, "threads": {"type": "integer"}, "uptime_seconds": {"type": "number"}, "in_flight": {"type": "integer"}, "max_k": {"type": "integer"}, "max_body": {"type": "integer"}}}}}
    }
  }
});

/* The store routes (store_routes.c), merged into the document above at
 * start: their paths (/items/{id} gains put and delete) and components. */
static const char openapi_store[] = JSON({
  "paths": {
    "/feedback": {
      "post": {
        "summary": "Record events (store): one event or {\"events\": [...]}",
        "description": "Needs cofi serve --store. Each event: user_id, item_id (strings, or integers written as decimal), event (a type of the event-weight table: watch, like, complete by default, or --event-weights; training weights it), optional value (finite, >= 0, default 1), optional timestamp (ISO 8601, e.g. 2026-01-02T03:04:05Z, or unix seconds; default now). The request is all or nothing, and is answered only after its transaction committed (group commit: concurrent requests share one). At most 10000 events per request. Writes need the API token when the server has one (required off loopback).",
        "operationId": "feedback",
        "security": [{"apiToken": []}, {}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/Event"}, {"type": "object", "additionalProperties": false, "required": ["events"], "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 10000, "items": {"$ref": "#/components/schemas/Event"}}}}]}}}},
        "responses": {
          "200": {"description": "Every event is committed.", "content": {"application/json": {"schema": {"type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}}}}},
          "400": {"$ref": "#/components/responses/BadEvent"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/StoreDisabled"},
          "413": {"$ref": "#/components/responses/TooLarge"},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      }
    },
    "/items/{id}": {
      "put": {
        "summary": "Create or replace an item in the store",
        "description": "Needs --store and, when configured, the API token. Every attribute is replaced: one not given becomes empty (title null, categories [], hidden false, timestamp null, fields {}).",
        "operationId": "putItem",
        "security": [{"apiToken": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/item_path"}],
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemWrite"}}}},
        "responses": {
          "200": {"description": "Stored.", "content": {"application/json": {"schema": {"type": "object", "properties": {"item_id": {"type": "string"}, "stored": {"type": "boolean"}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/StoreDisabled"},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      },
      "delete": {
        "summary": "Hide an item (store): not to be recommended; its events are kept",
        "operationId": "deleteItem",
        "security": [{"apiToken": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/item_path"}],
        "responses": {
          "200": {"description": "Hidden.", "content": {"application/json": {"schema": {"type": "object", "properties": {"item_id": {"type": "string"}, "hidden": {"type": "boolean"}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "Not in the store (unknown_item), or no --store (store_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      }
    },
    "/users/{id}": {
      "get": {
        "summary": "A user of the store and their labels",
        "operationId": "getUser",
        "parameters": [{"$ref": "#/components/parameters/user_path"}],
        "responses": {
          "200": {"description": "The user.", "content": {"application/json": {"schema": {"type": "object", "properties": {"user_id": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"description": "Not in the store (unknown_user), or no --store (store_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      },
      "put": {
        "summary": "Create a user or replace their labels",
        "operationId": "putUser",
        "security": [{"apiToken": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/user_path"}],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}}}},
        "responses": {
          "200": {"description": "Stored.", "content": {"application/json": {"schema": {"type": "object", "properties": {"user_id": {"type": "string"}, "stored": {"type": "boolean"}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"$ref": "#/components/responses/StoreDisabled"},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      },
      "delete": {
        "summary": "Delete a user and every event of theirs (the right to be forgotten)",
        "description": "One transaction. A model trained before still holds the user until the next training (cofi train --store) and reload.",
        "operationId": "deleteUser",
        "security": [{"apiToken": []}, {}],
        "parameters": [{"$ref": "#/components/parameters/user_path"}],
        "responses": {
          "200": {"description": "Deleted.", "content": {"application/json": {"schema": {"type": "object", "properties": {"user_id": {"type": "string"}, "deleted": {"type": "boolean"}, "events_deleted": {"type": "integer"}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "401": {"$ref": "#/components/responses/Unauthorized"},
          "404": {"description": "Not in the store (unknown_user), or no --store (store_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      }
    },
    "/users/{id}/history": {
      "get": {
        "summary": "A user's history: their events from the store, or without --store their training items",
        "description": "With --store: the user's events, newest first (timestamp descending, unknown times last, then insertion order descending), with item titles, source 'store'. Without --store: the items the user had in the model's training matrix, largest values first, source 'model' (see the History schema).",
        "operationId": "userHistory",
        "parameters": [{"$ref": "#/components/parameters/user_path"}, {"name": "limit", "in": "query", "description": "Most events to return.", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}}],
        "responses": {
          "200": {"description": "The events.", "content": {"application/json": {"schema": {"type": "object", "required": ["user_id", "events"], "properties": {"user_id": {"type": "string"}, "events": {"type": "array", "items": {"$ref": "#/components/schemas/StoredEvent"}}}}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "404": {"description": "Not in the store (unknown_user: never seen, or deleted), or without --store not in the model (unknown_user).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"$ref": "#/components/responses/StoreUnavailable"}
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "apiToken": {"type": "http", "scheme": "bearer", "description": "The token of cofi serve --api-token-file (or COFI_API_TOKEN), for the store's write routes."}
    },
    "parameters": {
      "item_path": {"name": "id", "in": "path", "required": true, "description": "The item ID, percent-encoded.", "schema": {"type": "string"}},
      "user_path": {"name": "id", "in": "path", "required": true, "description": "The user ID, percent-encoded.", "schema": {"type": "string"}}
    },
    "responses": {
      "BadEvent": {"description": "A bad request or event (code invalid_json, invalid_request, invalid_event); nothing was written. The message names the event's index in a batch and the field, e.g. \"event 1: user_id: empty ID\", \"event 0: event: unknown event type 'teleport' (known: watch, like, complete)\".", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "The server has an API token and the request did not send it (code unauthorized).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "StoreDisabled": {"description": "The server runs without --store (code store_disabled).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "StoreUnavailable": {"description": "The database failed, is unreachable or full (code store_unavailable): nothing was written; recommendations are still served from the model.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "schemas": {
      "Event": {"type": "object", "additionalProperties": false, "required": ["user_id", "item_id", "event"], "properties": {"user_id": {"oneOf": [{"type": "string"}, {"type": "integer"}]}, "item_id": {"oneOf": [{"type": "string"}, {"type": "integer"}]}, "event": {"type": "string", "example": "like"}, "value": {"type": "number", "minimum": 0, "default": 1}, "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]}}},
      "StoredEvent": {"type": "object", "properties": {"item_id": {"type": "string"}, "title": {"type": "string", "nullable": true}, "event": {"type": "string", "nullable": true, "description": "null for imported (untyped) events."}, "value": {"type": "number"}, "timestamp": {"type": "string", "format": "date-time", "nullable": true}, "seq": {"type": "integer"}}},
      "ItemWrite": {"type": "object", "additionalProperties": false, "properties": {"title": {"type": "string", "nullable": true}, "categories": {"type": "array", "items": {"type": "string"}}, "hidden": {"type": "boolean"}, "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}], "nullable": true}, "fields": {"type": "object"}}}
    }
  }
});

/* Merges openapi_store into doc: new paths added, existing ones gain the
 * new methods; components merged section by section. */
static bool merge_store_doc(json_t *doc, const char *text) {
  json_t *st = json_loads(text, 0, NULL);
  if (!st) return false;
  bool ok = true;
  const char *key;
  json_t *v;
  json_t *paths = json_object_get(doc, "paths");
  json_object_foreach(json_object_get(st, "paths"), key, v) {
    json_t *cur = json_object_get(paths, key);
    ok = ok && (cur ? json_object_update(cur, v) : json_object_set(paths, key, v)) == 0;
  }
  json_t *comp = json_object_get(doc, "components");
  json_object_foreach(json_object_get(st, "components"), key, v) {
    json_t *cur = json_object_get(comp, key);
    ok = ok && (cur ? json_object_update(cur, v) : json_object_set(comp, key, v)) == 0;
  }
  json_decref(st);
  return ok && paths && comp;
}

/* Sets obj[key] = integer at a path of object keys; false when the path
 * is not in the document. */
static bool set_int(json_t *root, const char *const *path, const char *key, json_int_t v) {
  json_t *o = root;
  for (size_t i = 0; path[i]; i++) o = json_object_get(o, path[i]);
  return o && json_object_set_new(o, key, json_integer(v)) == 0;
}

char *srv_openapi_json(const cofi_server_config *cfg, cofi_diag *diag) {
  json_error_t je;
  json_t *doc = json_loads(openapi_template, 0, &je);
  char *out = NULL;
  if (!doc) {
    if (diag)
      snprintf(diag->message, sizeof diag->message,
               "the built-in OpenAPI document is malformed at column %d: %s", je.column, je.text);
    return NULL;
  }
  static const char *const k_schema[] = {"components", "parameters", "k", "schema", NULL};
  json_t *reqp = NULL, *batchp = NULL;
  bool ok = merge_store_doc(doc, openapi_store) && merge_store_doc(doc, srv_openapi_online) &&
            json_object_set_new(json_object_get(doc, "info"), "version", json_string(COFI_VERSION)) == 0 &&
            set_int(doc, k_schema, "maximum", cfg->max_k) &&
            set_int(doc, k_schema, "default", cfg->default_k);
  if (ok) {
    reqp = json_object_get(json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "RecommendRequest"), "properties");
    batchp = json_object_get(json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "BatchRequest"), "properties");
    ok = reqp && batchp;
  }
  if (ok) {
    static const char *const rk[] = {"k", NULL}, *const rl[] = {"liked", NULL},
                             *const re[] = {"exclude", NULL}, *const bu[] = {"users", NULL};
    ok = set_int(reqp, rk, "maximum", cfg->max_k) && set_int(reqp, rk, "default", cfg->invocations_k) &&
         set_int(reqp, rl, "maxItems", cfg->max_list) && set_int(reqp, re, "maxItems", cfg->max_list) &&
         set_int(batchp, rk, "maximum", cfg->max_k) && set_int(batchp, rk, "default", cfg->default_k) &&
         set_int(batchp, bu, "maxItems", cfg->max_list);
  }
  if (ok) {
    char limits[256];
    snprintf(limits, sizeof limits,
             " Limits of this server: k <= %u, at most %u IDs per list or batch, IDs of at most %u "
             "bytes, request bodies of at most %zu bytes (413 beyond).",
             cfg->max_k, cfg->max_list, cfg->max_id_len, cfg->max_body);
    json_t *info = json_object_get(doc, "info");
    const char *d = json_string_value(json_object_get(info, "description"));
    size_t dl = d ? strlen(d) : 0, ll = strlen(limits);
    char *text = malloc(dl + ll + 1);
    ok = text != NULL;
    if (ok) {
      memcpy(text, d, dl);
      memcpy(text + dl, limits, ll + 1);
      ok = json_object_set_new(info, "description", json_string(text)) == 0;
      free(text);
    }
  }
  if (ok) out = json_dumps(doc, JSON_COMPACT);
  if (!out && diag) snprintf(diag->message, sizeof diag->message, "out of memory building the OpenAPI document");
  json_decref(doc);
  return out;
}

const char srv_docs_html[] =
    "<!doctype html>\n"
    "<html lang='en'><head><meta charset='utf-8'>\n"
    "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
    "<title>cofi API</title>\n"
    "<style>\n"
    "body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60em;padding:1em 1.5em;color:#222}\n"
    "h1{font-size:1.5em;margin-bottom:.2em} .desc{color:#555}\n"
    "details{border:1px solid #ccc;border-radius:6px;margin:.6em 0;padding:.4em .8em}\n"
    "summary{cursor:pointer} .m{display:inline-block;min-width:3.6em;font-weight:bold;font-family:monospace}\n"
    ".get{color:#0a6b2d} .post{color:#1f4fb5} code,pre,textarea,input{font-family:ui-monospace,monospace;font-size:13px}\n"
    "label{display:block;margin:.3em 0} label span{display:inline-block;min-width:9em}\n"
    "input{width:22em} textarea{width:100%;height:6em}\n"
    "pre{background:#f5f5f5;padding:.6em;overflow:auto;max-height:25em;white-space:pre-wrap}\n"
    "button{margin:.4em 0;padding:.3em 1em}\n"
    "</style></head><body>\n"
    "<h1>cofi API</h1><p class='desc' id='desc'>Loading /openapi.json ...</p>\n"
    "<div id='ops'></div>\n"
    "<script>\n"
    "function el(tag, attrs, text) {\n"
    "  const e = document.createElement(tag);\n"
    "  for (const k in (attrs || {})) e.setAttribute(k, attrs[k]);\n"
    "  if (text !== undefined) e.textContent = text;\n"
    "  return e;\n"
    "}\n"
    "function resolve(doc, p) {\n"
    "  if (!p || !p['$ref']) return p;\n"
    "  return p['$ref'].split('/').slice(1).reduce((o, k) => o[k], doc);\n"
    "}\n"
    "function operation(doc, path, method, op) {\n"
    "  const box = el('details');\n"
    "  const sum = el('summary');\n"
    "  sum.append(el('span', {class: 'm ' + method}, method.toUpperCase()), el('code', {}, path), ' ' + (op.summary || ''));\n"
    "  box.append(sum);\n"
    "  if (op.description) box.append(el('p', {class: 'desc'}, op.description));\n"
    "  const inputs = [];\n"
    "  for (const raw of op.parameters || []) {\n"
    "    const p = resolve(doc, raw);\n"
    "    const lab = el('label');\n"
    "    const inp = el('input', {placeholder: p.description || ''});\n"
    "    if (p.example !== undefined) inp.value = p.example;\n"
    "    lab.append(el('span', {}, p.name + (p.required ? ' *' : '') + ' (' + p.in + ')'), inp);\n"
    "    box.append(lab);\n"
    "    inputs.push([p, inp]);\n"
    "  }\n"
    "  let body = null;\n"
    "  if (op.requestBody) {\n"
    "    const media = op.requestBody.content['application/json'];\n"
    "    body = el('textarea');\n"
    "    body.value = JSON.stringify(media.example || {}, null, 1);\n"
    "    box.append(el('div', {}, 'JSON body:'), body);\n"
    "  }\n"
    "  let token = null;\n"
    "  if (op.security) {\n"
    "    const lab = el('label');\n"
    "    token = el('input', {type: 'password'});\n"
    "    lab.append(el('span', {}, 'admin token'), token);\n"
    "    box.append(lab);\n"
    "  }\n"
    "  const btn = el('button', {}, 'Send');\n"
    "  const out = el('pre', {}, '');\n"
    "  btn.onclick = async () => {\n"
    "    let url = path;\n"
    "    const q = new URLSearchParams();\n"
    "    for (const [p, inp] of inputs) {\n"
    "      if (inp.value === '') continue;\n"
    "      if (p.in === 'path') url = url.replace('{' + p.name + '}', encodeURIComponent(inp.value));\n"
    "      else q.append(p.name, inp.value);\n"
    "    }\n"
    "    const qs = q.toString();\n"
    "    if (qs) url += '?' + qs;\n"
    "    const init = {method: method.toUpperCase(), headers: {}};\n"
    "    if (body) { init.body = body.value; init.headers['Content-Type'] = 'application/json'; }\n"
    "    if (token && token.value) init.headers['Authorization'] = 'Bearer ' + token.value;\n"
    "    out.textContent = init.method + ' ' + url + ' ...';\n"
    "    const t0 = performance.now();\n"
    "    try {\n"
    "      const r = await fetch(url, init);\n"
    "      const text = await r.text();\n"
    "      let shown = text;\n"
    "      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}\n"
    "      out.textContent = init.method + ' ' + url + '\\n' + r.status + ' ' + r.statusText +\n"
    "        ' (' + (performance.now() - t0).toFixed(1) + ' ms)\\n\\n' + shown;\n"
    "    } catch (e) { out.textContent = 'request failed: ' + e; }\n"
    "  };\n"
    "  box.append(btn, out);\n"
    "  return box;\n"
    "}\n"
    "fetch('/openapi.json').then(r => r.json()).then(doc => {\n"
    "  document.getElementById('desc').textContent = doc.info.title + ' ' + doc.info.version + '. ' + doc.info.description;\n"
    "  const ops = document.getElementById('ops');\n"
    "  for (const path in doc.paths)\n"
    "    for (const method in doc.paths[path])\n"
    "      ops.append(operation(doc, path, method, doc.paths[path][method]));\n"
    "}).catch(e => { document.getElementById('desc').textContent = 'cannot load /openapi.json: ' + e; });\n"
    "</script></body></html>\n";
