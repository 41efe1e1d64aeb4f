/*
 * openapi_online.c — the OpenAPI entries of the online routes
 * (online.h): GET /popular, GET /latest, the category= and items=
 * parameters of GET /recommend and the "source" of its answer. openapi.c
 * merges this document into its own.
 */
#include "online.h"

#define JSON(...) #__VA_ARGS__

const char srv_openapi_online[] = JSON({
  "paths": {
    "/popular": {
      "get": {
        "summary": "The most popular items: most events in a recent window (counted, not time-decayed)",
        "description": "With --store: items ranked by how many events they have (each event counts once), with window only the events whose timestamp is within that long before now (events without a timestamp then do not count); ties by item ID in byte order; hidden items never listed. Without --store: ranked by the number of users who had the item in training (counted: \"training users\"; window is refused). Also the answer of /recommend for a user with no events at all (source popular).",
        "operationId": "popular",
        "parameters": [
          {"$ref": "#/components/parameters/k"},
          {"$ref": "#/components/parameters/category"},
          {"name": "window", "in": "query", "description": "A positive number and a unit s, m, h, d or w (24h, 7d; at most 100 years), or all (the default).", "schema": {"type": "string", "default": "all"}, "example": "7d"}
        ],
        "responses": {
          "200": {"description": "Items, most events first.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemList"}}}},
          "400": {"description": "Bad parameters (codes invalid_k, invalid_category, invalid_window, unknown_parameter, duplicate_parameter).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"description": "The store is unavailable (store_unavailable), or no model without --store (model_unavailable).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/latest": {
      "get": {
        "summary": "The newest items by their timestamp (store)",
        "description": "Items with a timestamp (PUT /items/{id} with timestamp), newest first, ties by item ID; hidden items never listed. Needs --store.",
        "operationId": "latest",
        "parameters": [
          {"$ref": "#/components/parameters/k"},
          {"$ref": "#/components/parameters/category"}
        ],
        "responses": {
          "200": {"description": "Items, newest first (score: the unix time).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ItemList"}}}},
          "400": {"description": "Bad parameters (codes invalid_k, invalid_category, unknown_parameter, duplicate_parameter).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "503": {"description": "No --store (store_disabled), or the store is unavailable (store_unavailable).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    }
  },
  "components": {
    "parameters": {
      "category": {"name": "category", "in": "query", "description": "Only items whose categories include this one (1..256 bytes): the store's item categories, else the model's genres/categories metadata. With user_id only.", "schema": {"type": "string", "minLength": 1, "maxLength": 256}, "example": "Comedy"},
      "items": {"name": "items", "in": "query", "description": "Restrict to these candidates (comma-separated IDs, at most --max-list): re-ranks a caller's list for the user. IDs the model does not know are ignored; seen, excluded and hidden items are left out as always. With user_id only.", "schema": {"type": "string"}, "example": "1,2,3"}
    },
    "schemas": {
      "ItemList": {"type": "object", "required": ["source", "recommendations"], "properties": {"source": {"type": "string", "enum": ["popular", "latest"]}, "counted": {"type": "string", "enum": ["events", "training users"]}, "window": {"type": "string"}, "recommendations": {"type": "array", "items": {"type": "object", "required": ["item_id", "score"], "properties": {"item_id": {"type": "string"}, "title": {"type": "string"}, "score": {"type": "number", "description": "popular: events counted; latest: the item's unix time."}, "timestamp": {"type": "integer", "description": "The item's unix time, when it has one."}}}}}}
    }
  }
});
