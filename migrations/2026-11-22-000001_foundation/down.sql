DROP TABLE segment_members;
DROP TABLE segments;
DROP TABLE attribute_definitions;
DROP TABLE contacts;
DROP TABLE api_keys;
DROP TABLE tenants;
