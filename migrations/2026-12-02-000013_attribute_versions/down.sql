DROP TABLE attribute_versions;
