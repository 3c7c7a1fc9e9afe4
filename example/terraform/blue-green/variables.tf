variable "region" {
  description = "The AWS region of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the service: the load balancer and launch template are called this, the colours NAME-blue and NAME-green."
  type        = string
  default     = "web"
}

variable "ami_id" {
  description = "The AMI the stack is created with. Only the first apply uses it: from then on phoenix owns the image (see lifecycle.ignore_changes on aws_launch_template.web), so changing it here changes nothing."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the stack."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets (in at least two availability zones) for the load balancer and the instances."
  type        = list(string)
}

variable "instance_type" {
  description = "Instance type of the web servers."
  type        = string
  default     = "t3.micro"
}

variable "app_port" {
  description = "Port the app listens on; the load balancer forwards to it and health-checks /health on it."
  type        = number
  default     = 8080
}

variable "min_size" {
  description = "Minimum number of instances of the live colour (blue, at first). phoenix gives the colour it switches to the live colour's minimum and maximum."
  type        = number
  default     = 2
}

variable "max_size" {
  description = "Maximum number of instances of either colour."
  type        = number
  default     = 6
}

variable "desired_capacity" {
  description = "Number of instances of the live colour (blue, at first); the idle colour has none."
  type        = number
  default     = 3
}
